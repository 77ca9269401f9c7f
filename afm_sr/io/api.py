"""``read``, ``list_channels``, ``describe`` and ``write``: the only doors in and out of afm-sr's files.

Every failure leaves through ``AFMFileError`` naming the file and what to do; no library exception
escapes, so the CLI and folder materials can report one line per bad file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from afm_sr.atomic import WRITE_HINT, check_destination
from afm_sr.errors import AFMFileError
from afm_sr.io import writers
from afm_sr.io.budget import memory_budget, reserve
from afm_sr.io.channels import find_height, pick
from afm_sr.io.formats import Format, detect
from afm_sr.io.heightmap import HeightMap, PixelSize, check_pixel_size, user_pixel_size, value_problem
from afm_sr.io.readers._common import Hints

T = TypeVar("T")
PathLike = str | os.PathLike
MemoryLimit = int | str | None
#: The smallest image afm-sr accepts from a file (one pixel per side cannot be leveled or upscaled).
MIN_SIDE = 2


_READ_HINT = "is the file complete and of the format its name says?"


def _guarded(path: Path, what: str, action: Callable[[], T], hint: str = _READ_HINT) -> T:
    """Run ``action``; turn any exception into AFMFileError for ``path`` (ours keep their message)."""
    try:
        return action()
    except AFMFileError as exc:
        if exc.path is None:
            raise AFMFileError(path, exc.problem) from exc
        raise
    except MemoryError as exc:
        raise AFMFileError(path, f"not enough memory to {what}") from exc
    except Exception as exc:
        raise AFMFileError(path, f"could not {what} ({type(exc).__name__}: {exc}); {hint}") from exc


def _existing_file(path: PathLike) -> Path:
    """``path`` as a Path, or AFMFileError if it is missing, a directory or empty."""
    p = Path(path)
    try:
        info = p.stat()
    except FileNotFoundError:
        raise AFMFileError(p, "no such file") from None
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte, a folder we may not enter, ...
        raise AFMFileError(p, f"cannot access it ({type(exc).__name__}: {exc})") from exc
    if stat.S_ISDIR(info.st_mode):
        raise AFMFileError(p, "is a directory; give a file (for a folder of scans use material=folder)")
    if not stat.S_ISREG(info.st_mode):
        raise AFMFileError(p, "is not a regular file (a pipe or device?); give a file saved on disk")
    if info.st_size == 0:
        raise AFMFileError(p, "the file is empty")
    return p


def _load(path: PathLike, pixel_size: tuple[float, float] | None, z_unit: str | None, memory_limit: MemoryLimit
          ) -> tuple[Path, Format, list[HeightMap]]:
    """Detect the format and read every channel of the file, all of them within one memory budget.

    NumPy's floating-point warnings while decoding (a damaged header's scale overflowing, Inf x 0) are silenced:
    the values they make are NaN/Inf, which ``read`` refuses in one clear error instead.
    """
    p = _existing_file(path)
    fmt = _guarded(p, "detect the format", lambda: detect(p))
    with memory_budget(memory_limit), np.errstate(all="ignore"):
        maps = _guarded(p, f"read it as {fmt.name} (via {fmt.library})", lambda: fmt.read(p, Hints(pixel_size, z_unit)))
    if not maps:
        raise AFMFileError(p, f"no image found in this {fmt.name} file")
    return p, fmt, maps


def _checked(path: Path, hm: HeightMap) -> HeightMap:
    """``hm`` if it is a usable image: at least 2x2 px and not NaN/Inf anywhere."""
    ny, nx = hm.shape
    if min(ny, nx) < MIN_SIDE:
        raise AFMFileError(path, f"channel {hm.channel!r} is {ny}x{nx} px; an image needs at least "
                                 f"{MIN_SIDE}x{MIN_SIDE}")
    if value_problem(hm.data) is not None:  # min/max first: no full-size boolean arrays for a good image
        bad = int(np.count_nonzero(~np.isfinite(hm.data)))
        raise AFMFileError(path, f"channel {hm.channel!r} has {bad} of {hm.data.size} values NaN or Inf "
                                 "(an unfinished scan?); crop or fill them, e.g. in Gwyddion, first")
    return hm


def read(path: PathLike, channel: str | None = None, pixel_size: PixelSize = None, z_unit: str | None = None,
         memory_limit: MemoryLimit = None) -> HeightMap:
    """Read one channel of an AFM file as a HeightMap in meters (the height channel unless ``channel``).

    Parameters
    ----------
    path : str or os.PathLike
        File to read; the format comes from its suffix, checked against its content.
    channel : str, optional
        Channel name as ``list_channels`` gives it (case and punctuation do not matter).
    pixel_size : (float, float) or float, optional
        (dx, dy) or one value, in meters, for formats that do not store it (text, bare .npy), or in place of
        a stored one outside 1 pm .. 1 mm (a damaged header).
    z_unit : str, optional
        Unit of the values for formats that do not store it (default meters), e.g. ``"nm"``.
    memory_limit : int or str, optional
        Bytes (or ``"4G"``) the decoded channels may take; default ``$AFM_SR_MEMORY_LIMIT`` or half the
        available memory (``afm_sr.io.budget``).

    Raises
    ------
    AFMFileError
        For a missing, empty, truncated, unknown or unusable file, one that would decompress past the
        memory limit, or one storing a pixel size outside 1 pm .. 1 mm without ``pixel_size`` given, naming
        the file and the fix.
    InputError
        For a pixel size that is not finite or not within 1 pm .. 1 mm.
    """
    user = user_pixel_size(pixel_size)
    p, fmt, maps = _load(path, user, z_unit, memory_limit)
    hm = _plausible_pixel_size(p, _checked(p, pick(maps, channel, p)), user)
    hm.metadata["format"] = fmt.name  # the file just read, not what a sidecar or /0/meta says it came from
    return hm


def _plausible_pixel_size(path: Path, hm: HeightMap, user: tuple[float, float] | None) -> HeightMap:
    """``hm`` if the pixel size the file stores is 1 pm .. 1 mm; else the caller's, or an error asking for it."""
    try:
        check_pixel_size(hm.pixel_size)
    except ValueError:
        if user is None:
            size = " x ".join(f"{v:g}" for v in dict.fromkeys(hm.pixel_size))
            raise AFMFileError(path, f"stores a pixel size of {size} m, not a plausible AFM pixel size (1 pm .. "
                                     "1 mm): a damaged header? pass pixel_size=(dx, dy) in meters (CLI: "
                                     "--pixel-size) to use yours") from None
        hm = hm.with_data(hm.data, user)
        hm.metadata["pixel_size_from_user"] = True
    return hm


def list_channels(path: PathLike, memory_limit: MemoryLimit = None) -> list[str]:
    """Names of every channel the file holds, in file order (what ``read(channel=...)`` accepts)."""
    # Names do not depend on scale: dummy pixel size and unit let bare arrays and matrices list too.
    return [hm.channel for hm in _load(path, (1.0, 1.0), "m", memory_limit)[2]]


@dataclass(frozen=True)
class ChannelInfo:
    """One channel of a file: its name, the SI unit of its values, pixels (ny, nx) and scan size (m)."""

    name: str
    z_unit: str
    shape: tuple[int, int]
    scan_size: tuple[float, float]


@dataclass(frozen=True)
class FileInfo:
    """What ``afm-sr info`` shows about one file.

    ``channel`` is the channel ``read`` takes (the height channel, or the one asked for) and ``z_range`` its
    value range in its unit; both are None where the file has no height channel and none was asked for.
    """

    path: Path
    format: str
    channels: list[ChannelInfo]
    channel: ChannelInfo | None
    z_range: tuple[float, float] | None


def _channel_info(hm: HeightMap) -> ChannelInfo:
    """The ChannelInfo of one map (no data: what ``afm-sr info --channels`` lists)."""
    return ChannelInfo(hm.channel, hm.z_unit, hm.shape, hm.scan_size)


def describe(path: PathLike, channel: str | None = None, pixel_size: PixelSize = None, z_unit: str | None = None,
             memory_limit: MemoryLimit = None) -> FileInfo:
    """Format, every channel (name, unit, pixels, scan size), and the range of the channel ``read`` takes."""
    p, fmt, maps = _load(path, user_pixel_size(pixel_size), z_unit, memory_limit)
    chosen = find_height(maps) if channel is None else pick(maps, channel, p)
    if chosen is None:
        return FileInfo(p, fmt.name, [_channel_info(m) for m in maps], None, None)
    hm = _checked(p, chosen)
    return FileInfo(p, fmt.name, [_channel_info(m) for m in maps], _channel_info(hm),
                    (float(hm.data.min()), float(hm.data.max())))


def reserve_write(path: PathLike, shape: tuple[int, int], memory_limit: MemoryLimit = None) -> None:
    """Refuse (AFMFileError) to write a ``shape`` float64 map to ``path`` if it and the writer's copies pass the limit.

    ``write`` checks this itself; the CLI also calls it before enhancing, so no work is done for an unwritable result.
    """
    p = Path(path)
    extra = writers.EXTRA_BYTES.get(p.suffix.lower())
    if extra is not None:
        ny, nx = shape
        reserve(ny * nx * (8 + extra), f"writing a {nx}x{ny} px {p.suffix} file", p, memory_limit)


def check_output(path: PathLike, overwrite: bool = False) -> Path:
    """``path`` as a Path if a height map may be written there (with its ``.npy`` sidecar); else AFMFileError.

    A format ``write`` knows, then ``afm_sr.atomic.check_destination`` for each file: taken names, folders in the
    way, names too long for the file system. Callers check before the work, so nothing is computed for nothing.
    """
    p = Path(path)
    if p.suffix.lower() not in writers.WRITERS:
        raise AFMFileError(p, f"cannot write {p.suffix!r} files; use one of {sorted(writers.WRITERS)}")
    for target in (p, *writers.companions(p)):
        check_destination(target, overwrite)
    return p


def write(hm: HeightMap, path: PathLike, overwrite: bool = False, memory_limit: MemoryLimit = None) -> Path:
    """Write ``hm`` as .gwy, .tiff/.tif, .npy or Gwyddion-style .txt, atomically; returns the path.

    Heights that are NaN/Inf (or beyond float32 for .tiff/.npy) are never written, and the writer's own copies
    of the data are checked against the memory limit (``memory_limit`` as in ``read``) first.

    Raises
    ------
    AFMFileError
        If the suffix is not writable, the file exists and ``overwrite`` is false (OutputExistsError), the
        folder is missing or is a file, the heights cannot be stored, or writing fails.
    """
    p = check_output(path, overwrite)
    suffix = p.suffix.lower()
    writer = writers.WRITERS[suffix]
    problem = value_problem(hm.data, float32=suffix in writers.FLOAT32_SUFFIXES)
    if problem:
        raise AFMFileError(p, f"not written: {problem}")
    reserve_write(p, hm.shape, memory_limit)
    _guarded(p, "write it", lambda: writer(hm, p, overwrite), WRITE_HINT)
    return p
