"""Outputs that appear whole or not at all: check a destination, write to temp files beside it, then publish.

The temp files sit in the target's folder so publishing is an atomic rename (or, without ``overwrite``, a
hard link that fails if the target appeared meanwhile): a reader never sees a half-written file, two
processes writing the same name never replace each other's file unasked, and a failed or interrupted write
leaves nothing behind (not even a sidecar written with it).

A temp file ``.NAME.<12 hex>.part`` is locked (``flock``) by its writer until it is published or removed. A
process killed outright (SIGKILL, power loss) cannot remove its temp files, but the lock dies with it: the
next write into that folder deletes every such file that nobody holds locked. Whole temp folders
(``temp_folder``, e.g. a cache entry being built) carry a locked ``.lock`` file the same way.

Plain file-system code (no NumPy, no torch): height-map writers, reports, checkpoints and exported weights
all publish through ``write_atomically``.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from afm_sr.errors import AFMFileError, AFMSRError, OutputExistsError

try:
    import fcntl
except ImportError:  # Windows: no flock, so temp files are not locked and stale ones are not swept
    fcntl = None  # type: ignore[assignment]

#: Writes one output's content into the temp file it is given.
Fill = Callable[[Path], None]
_TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{12}\.part")
_TEMP_FOLDER, _FOLDER_LOCK = re.compile(r"\..+\.[0-9a-f]{12}\.tmp"), ".lock"
WRITE_HINT = "is the folder writable and is there space left on the disk?"
#: Longest file name (bytes) assumed where the file system does not say (Linux, macOS and Windows allow 255).
NAME_MAX = 255
#: Free space (bytes) under which a failed write is blamed on a full disk when the error itself does not say why.
FULL_DISK_FREE = 1 << 20
#: What a write failure with one of these error numbers means for the user, and what to do.
_WRITE_CAUSES = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "your disk quota is exhausted; delete some of your files or write to another disk",
    errno.EFBIG: "the file is larger than this process may write (the shell's file-size limit, ulimit -f, or the "
                 "largest file this file system holds); raise the limit or write to another disk",
    errno.EIO: "an input/output error on the disk (a failing disk, or a network share that went away?); check the "
               "disk, then write again",
    errno.ENAMETOOLONG: "a name in the path is longer than the file system allows (255 bytes a name, 4096 the "
                        "whole path); give a shorter one",
}


def name_max(folder: Path) -> int:
    """Longest file name in bytes that ``folder``'s file system allows (NAME_MAX where it cannot be asked)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX


def _blocking_file(folder: Path) -> Path | None:
    """The nearest existing ancestor of ``folder`` (itself included) if it is a file, not a folder."""
    for candidate in (folder, *folder.parents):
        if os.path.exists(candidate):  # (False, not an OSError, for a name too long to look up)
            return None if os.path.isdir(candidate) else candidate
    return None


def _occupied(path: Path, detail: str = "") -> OutputExistsError:
    """The error for an output name that is taken: by a dangling symbolic link, or by a file."""
    if path.is_symlink() and not path.exists():
        return OutputExistsError(path, f"is a symbolic link to {os.readlink(path)}, which does not exist")
    return OutputExistsError(path, f"exists{detail}")


def check_destination(path: Path, overwrite: bool) -> None:
    """Refuse an output path that cannot or may not be written, saying why (before any work is done).

    Raises OutputExistsError for an existing file or link without ``overwrite``, AFMFileError for a name longer
    than the file system allows, a device, pipe or socket (even with ``overwrite``), a folder in the way, a parent
    that is a file, or a parent folder that does not exist.
    """
    longest = name_max(path.parent)
    if len(os.fsencode(path.name)) > longest:
        raise AFMFileError(path, f"the file name is {len(os.fsencode(path.name))} bytes long, more than the {longest} "
                                 "this file system allows; give a shorter output name")
    try:
        if path.is_dir():
            raise AFMFileError(path, "is a folder; give a file name (or a folder as -o for several inputs)")
        if path.exists() and not path.is_symlink() and not path.is_file():  # /dev/null, a FIFO, a socket
            raise AFMFileError(path, "is not a regular file (a device, pipe or socket); afm-sr writes only regular "
                                     "files and never replaces anything else, so give a file name")
        if (path.exists() or path.is_symlink()) and not overwrite:
            raise _occupied(path)
        if not path.parent.is_dir():
            blocker = _blocking_file(path.parent)
            raise AFMFileError(path, f"{blocker} is a file, not a folder" if blocker is not None else
                               f"the folder {path.parent} does not exist; create it first")
    except (OSError, ValueError) as exc:  # a name too long for the file system, a NUL byte, a folder we may not enter
        raise AFMFileError(path, f"cannot be written there ({type(exc).__name__}: {exc}); give a shorter or "
                                 "plainer output name, in a folder you may enter") from exc


def make_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents) if missing; AFMFileError saying why where that is impossible."""
    blocker = _blocking_file(folder)
    if blocker is not None:
        raise AFMFileError(folder, f"cannot be a folder: {blocker} is a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        cause = _cause(exc.errno, folder) or "is the location writable (not a read-only file system)?"
        raise AFMFileError(folder, f"cannot create the folder ({exc.strerror or exc}); {cause}") from exc


@contextlib.contextmanager
def _if_abandoned(lock: Path) -> Iterator[bool]:
    """Yield True while holding ``lock``'s flock where no live process holds it; False where one does or it is gone."""
    try:
        fd = os.open(lock, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # locked: its writer is alive
            yield False
        else:
            yield True
    finally:
        os.close(fd)


def _sweep(folder: Path, names: re.Pattern[str], folders: bool, lock: Callable[[Path], Path],
           remove: Callable[[Path], object]) -> list[Path]:
    """Remove the temp files (or folders) in ``folder`` named like ``names`` whose ``lock`` nobody holds."""
    if fcntl is None:
        return []
    removed = []
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            kind = entry.is_dir if folders else entry.is_file
            if not names.fullmatch(entry.name) or not kind(follow_symlinks=False):
                continue
            path = Path(entry.path)
            with _if_abandoned(lock(path)) as abandoned, contextlib.suppress(OSError):
                if abandoned:  # (another sweep may have removed it meanwhile)
                    remove(path)
                    removed.append(path)
    return removed


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the ``.NAME.<hex>.part`` files in ``folder`` whose writer is gone (nobody holds their lock)."""
    return _sweep(folder, _TEMP_NAME, False, lambda path: path, os.unlink)


@contextlib.contextmanager
def temp_folder(beside: Path) -> Iterator[Path]:
    """A new hidden folder ``.NAME.<hex>.tmp`` next to ``beside``, locked while in use and removed afterwards.

    For outputs that are whole folders (published with one rename by the caller). A process killed outright
    leaves the folder behind, unlocked: ``remove_stale_temp_folders`` on the parent deletes it later.
    """
    tmp = _hidden_beside(beside, ".tmp")
    tmp.mkdir()
    fd = os.open(tmp / _FOLDER_LOCK, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield tmp
    finally:
        os.close(fd)
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_temp_folders(folder: Path) -> list[Path]:
    """Delete the ``temp_folder`` folders in ``folder`` whose process is gone (nobody holds their lock)."""
    return _sweep(folder, _TEMP_FOLDER, True, lambda path: path / _FOLDER_LOCK,
                  functools.partial(shutil.rmtree, ignore_errors=True))


def _hidden_beside(path: Path, suffix: str) -> Path:
    """A new name ``.NAME.<12 hex><suffix>`` beside ``path``, NAME cut short so it never passes the name limit.

    Any name legal as the final output therefore has a legal temp name; the sweep patterns still match it.
    """
    tag = f".{secrets.token_hex(6)}{suffix}"
    room = name_max(path.parent) - len(os.fsencode(f".{tag}"))
    name = path.name
    while len(os.fsencode(name)) > room:
        name = name[:-1]
    return path.with_name(f".{name}{tag}")


def _temp_beside(path: Path) -> tuple[Path, int]:
    """Create an empty hidden temp file next to ``path`` and lock it; return it and the descriptor holding the lock.

    Permissions are those the umask gives new files. Should a sweep delete the file between its creation and
    the lock (it looks stale for that instant), another name is tried.
    """
    while True:
        tmp = _hidden_beside(path, ".part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        if fcntl is None:
            return tmp, fd
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.path.samestat(os.fstat(fd), os.stat(tmp)):
                return tmp, fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _publish(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move the finished ``tmp`` to ``path``; without ``overwrite``, fail rather than replace an existing file."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic "create if absent": no window in which another writer's file is replaced
    except FileExistsError:
        raise _occupied(path, " (another process may have just written it)") from None
    except OSError:  # a file system without hard links: check, then rename
        if path.exists() or path.is_symlink():
            raise _occupied(path) from None
        os.replace(tmp, path)


def _errno_of(exc: BaseException) -> int | None:
    """The error number behind a failed write: an OSError's, or one a library names only in its message.

    safetensors says ``I/O error: No space left on device (os error 28)``; torch and others wrap the OSError.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno:
            return seen.errno
        text = str(seen)
        number = re.search(r"os error (\d+)|\[Errno (\d+)\]", text)
        if number:
            return int(number.group(1) or number.group(2))
        for code in (*_WRITE_CAUSES, errno.EROFS, errno.EACCES):
            if os.strerror(code) in text:
                return code
        seen = seen.__cause__ or seen.__context__
    return None


def _space(folder: Path) -> tuple[int | None, int | None]:
    """Free bytes and free inodes an unprivileged user may still use on ``folder``'s file system (None: unknown)."""
    existing = next((p for p in (folder, *folder.parents) if os.path.exists(p)), folder)
    try:
        info = os.statvfs(existing)
    except (OSError, AttributeError):  # (no statvfs on Windows)
        return None, None
    return info.f_bavail * info.f_frsize, info.f_favail


def _cause(code: int | None, folder: Path) -> str | None:
    """The words for a write into ``folder`` failing with error number ``code``; None where they name no cause."""
    if code == errno.ENOSPC:
        free, inodes = _space(folder)
        if inodes == 0:
            return "the disk is full: it has no free inodes left (too many files; ENOSPC); delete files or write to " \
                   "another disk"
        left = "" if free is None else f", {free / 2**20:.1f} MiB free"
        return f"the disk is full (ENOSPC{left}); free some space or write to another disk"
    return f"{_WRITE_CAUSES[code]} ({errno.errorcode[code]})" if code in _WRITE_CAUSES else None


def write_failure(path: Path, exc: BaseException) -> AFMFileError:
    """The one error for a failed write of ``path``: the cause in words (disk full, quota, file size limit, I/O).

    Libraries report a full disk in their own ways (safetensors' SafetensorError, NumPy's short write "65536
    requested and 51168 written", torch's RuntimeError); where the error says no cause, nearly no free space left
    on the file system is taken as the cause.
    """
    code = _errno_of(exc)
    free = _space(path.parent)[0]
    if code is None and free is not None and free < FULL_DISK_FREE:
        code = errno.ENOSPC
    cause = _cause(code, path.parent)
    detail = f"{type(exc).__name__}: {exc}"
    if cause is not None:
        return AFMFileError(path, f"could not write it: {cause} ({detail})")
    return AFMFileError(path, f"could not write it ({detail}); {WRITE_HINT}")


def write_atomically(outputs: dict[Path, Fill], overwrite: bool) -> None:
    """Call each ``fill(tmp)`` on a temp file next to its output, then publish them all; clean up on failure.

    Without ``overwrite``, outputs already published by this call are removed again if a later one fails
    (or a signal stops it), so the caller finds either every file or none. Stale temp files of killed writers
    in the target folders are removed first. Any other exception (a library's own write error included) becomes
    AFMFileError naming the output and the cause (``write_failure``); afm-sr's errors and signals pass unchanged.
    """
    temps: dict[Path, tuple[Path, int]] = {}
    published: list[Path] = []
    current = next(iter(outputs), Path())
    try:
        for folder in dict.fromkeys(path.parent for path in outputs):
            remove_stale_temps(folder)
        for current, fill in outputs.items():
            temps[current] = _temp_beside(current)
            created = os.fstat(temps[current][1])
            fill(temps[current][0])
            if os.stat(temps[current][0]).st_ino != created.st_ino:  # the library replaced the file (safetensors: 0600)
                os.chmod(temps[current][0], created.st_mode & 0o777)
        for current, (tmp, _) in temps.items():
            _publish(tmp, current, overwrite)
            published.append(current)
    except BaseException as exc:
        for path in published if not overwrite else ():
            path.unlink(missing_ok=True)
        if isinstance(exc, Exception) and not isinstance(exc, AFMSRError | MemoryError):
            raise write_failure(current, exc) from exc
        raise
    finally:
        for tmp, fd in temps.values():
            os.close(fd)
            tmp.unlink(missing_ok=True)
