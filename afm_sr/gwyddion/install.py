"""Install and uninstall the plug-in's files in Gwyddion's plug-in folder, never touching files afm-sr did not write.

Per menu entry one executable launcher (Gwyddion registers only the first entry an executable prints) and its
``.rgi`` file (the same three lines, so Gwyddion's start-up need not run it), plus ``afm-sr-plugins.json``: the
manifest of what was written, with checksums. A file of that name that the manifest does not list, or that
changed since, is foreign and stays untouched; uninstall removes exactly what the manifest lists.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import afm_sr
from afm_sr.atomic import Fill, make_folder, write_atomically
from afm_sr.errors import AFMFileError, AFMSRError
from afm_sr.gwyddion.entries import ENTRIES, Entry, log_file, options_file

MANIFEST = "afm-sr-plugins.json"


@dataclass
class Report:
    """What install or uninstall did in ``folder``: files written or removed, and files left alone with why."""

    folder: Path
    done: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)


def launcher(entry: Entry, python: str = sys.executable) -> str:
    """The executable Gwyddion runs for ``entry``: a shell script answering ``register``, handing ``run`` to Python.

    ``register`` costs no Python start (Gwyddion runs it at each of its starts where no ``.rgi`` file answers);
    ``run`` execs this Python on ``afm_sr.gwyddion.plugin ENTRY``, with ``-P`` (Python 3.11+) keeping the folder
    Gwyddion runs it from off ``sys.path``.
    """
    safe_path = " -P" if sys.version_info >= (3, 11) else ""
    lines = " ".join(shlex.quote(line) for line in entry.registration().splitlines())
    return (f"#!/bin/sh\n# Gwyddion plug-in '{entry.menu}' of afm-sr {afm_sr.__version__}, written by "
            f"`afm-sr gwyddion install`;\n# remove it with `afm-sr gwyddion uninstall`. Options: {options_file()}, "
            f"log: {log_file()}\n"
            f"if [ \"$*\" = register ]; then printf '%s\\n' {lines}; exit 0; fi\n"
            f"exec {shlex.quote(python)}{safe_path} -m afm_sr.gwyddion.plugin {entry.name} \"$@\"\n")


def planned_files() -> dict[str, tuple[str, int]]:
    """File name -> (content, mode) of everything install writes besides the manifest."""
    files: dict[str, tuple[str, int]] = {}
    for entry in ENTRIES.values():
        files[entry.file_name] = (launcher(entry), 0o755)
        files[f"{entry.file_name}.rgi"] = (entry.registration(), 0o644)
    return files


def _digest(data: bytes) -> str:
    """SHA-256 of ``data`` in hex: how the manifest recognises its own files."""
    return hashlib.sha256(data).hexdigest()


def _owned(folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Files of a previous install still as written (name -> checksum), and the listed ones that changed or went."""
    path = folder / MANIFEST
    if not path.exists():
        return {}, {}
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))["files"]
        if not isinstance(listed, dict):
            raise TypeError("files is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AFMFileError(path, f"is not a manifest afm-sr can read ({exc}); remove the afm-sr files in "
                                 f"{folder} by hand, then the manifest") from None
    owned, changed = {}, {}
    for name, digest in listed.items():
        target = folder / name
        if target.is_file() and not target.is_symlink() and _digest(target.read_bytes()) == digest:
            owned[name] = digest
        else:
            changed[name] = "changed since afm-sr installed it" if target.exists() else "already gone"
    return owned, changed


def _refuse_windows() -> None:
    """Gwyddion on Windows runs only ``.exe`` plug-ins, which afm-sr does not build: say so and what to do."""
    if os.name == "nt":
        raise AFMSRError("afm-sr gwyddion install supports Linux and macOS only: Gwyddion on Windows runs plug-ins "
                         "that are .exe files; use `afm-sr enhance FILE` and open the .gwy file it writes")


def install(folder: Path) -> Report:
    """Write the launchers, their ``.rgi`` files and the manifest into ``folder``; refuse to replace foreign files.

    Reinstalling replaces this program's own files (e.g. after the Python environment moved) and removes those
    an earlier version wrote that are no longer planned.
    """
    _refuse_windows()
    owned, _ = _owned(folder)
    files = planned_files()
    foreign = [name for name in files
               if name not in owned and ((folder / name).exists() or (folder / name).is_symlink())]
    if foreign:
        raise AFMFileError(folder, f"already holds {', '.join(foreign)}, not written by afm-sr (or changed since); "
                                   "move them away, then run afm-sr gwyddion install again")
    make_folder(folder)
    manifest = {"afm_sr": afm_sr.__version__, "python": sys.executable,
                "files": {name: _digest(content.encode()) for name, (content, _) in files.items()}}
    outputs = {folder / name: _filler(content, mode) for name, (content, mode) in files.items()}
    outputs[folder / MANIFEST] = _filler(json.dumps(manifest, indent=1) + "\n", 0o644)
    write_atomically(outputs, overwrite=True)
    for stale in set(owned) - set(files):
        (folder / stale).unlink(missing_ok=True)
    return Report(folder, list(files))


def _filler(content: str, mode: int) -> Fill:
    """A ``write_atomically`` fill that writes ``content`` with permissions ``mode``."""

    def fill(tmp: Path) -> None:
        tmp.write_text(content, encoding="utf-8")
        tmp.chmod(mode)

    return fill


def uninstall(folder: Path) -> Report:
    """Remove the files the manifest in ``folder`` lists (those unchanged since install), then the manifest."""
    if not (folder / MANIFEST).exists():
        raise AFMFileError(folder, f"holds no afm-sr plug-ins (no {MANIFEST}); nothing was removed")
    owned, changed = _owned(folder)
    for name in owned:
        (folder / name).unlink(missing_ok=True)
    (folder / MANIFEST).unlink()
    return Report(folder, list(owned), changed)
