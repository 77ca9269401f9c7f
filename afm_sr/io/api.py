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

from afm_sr.errors import AFMFileError
from afm_sr.io import writers
from afm_sr.io.channels import find_height, pick
from afm_sr.io.formats import Format, detect
from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers._common import Hints

T = TypeVar("T")
PathLike = str | os.PathLike
#: The smallest image afm-sr accepts from a file (one pixel per side cannot be leveled or upscaled).
MIN_SIDE = 2


_READ_HINT = "is the file complete and of the format its name says?"
_WRITE_HINT = "is the folder writable and is there space left on the disk?"


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


def _load(path: PathLike, pixel_size: tuple[float, float] | float | None, z_unit: str | None
          ) -> tuple[Path, Format, list[HeightMap]]:
    """Detect the format and read every channel of the file."""
    p = _existing_file(path)
    if pixel_size is not None:
        pixel_size = (float(pixel_size), float(pixel_size)) if np.isscalar(pixel_size) else (
            float(pixel_size[0]), float(pixel_size[1]))  # type: ignore[index]
    fmt = _guarded(p, "detect the format", lambda: detect(p))
    maps = _guarded(p, f"read it as {fmt.name} (via {fmt.library})",
                    lambda: fmt.read(p, Hints(pixel_size, z_unit)))  # type: ignore[arg-type]
    if not maps:
        raise AFMFileError(p, f"no image found in this {fmt.name} file")
    return p, fmt, maps


def _checked(path: Path, hm: HeightMap) -> HeightMap:
    """``hm`` if it is a usable image: at least 2x2 px and not NaN/Inf anywhere."""
    ny, nx = hm.shape
    if min(ny, nx) < MIN_SIDE:
        raise AFMFileError(path, f"channel {hm.channel!r} is {ny}x{nx} px; an image needs at least "
                                 f"{MIN_SIDE}x{MIN_SIDE}")
    bad = int((~np.isfinite(hm.data)).sum())
    if bad:
        raise AFMFileError(path, f"channel {hm.channel!r} has {bad} of {hm.data.size} values NaN or Inf "
                                 "(an unfinished scan?); crop or fill them, e.g. in Gwyddion, first")
    return hm


def read(path: PathLike, channel: str | None = None, pixel_size: tuple[float, float] | float | None = None,
         z_unit: str | None = None) -> HeightMap:
    """Read one channel of an AFM file as a HeightMap in meters (the height channel unless ``channel``).

    Parameters
    ----------
    path : str or os.PathLike
        File to read; the format comes from its suffix, checked against its content.
    channel : str, optional
        Channel name as ``list_channels`` gives it (case and punctuation do not matter).
    pixel_size : (float, float) or float, optional
        (dx, dy) or one value, in meters, for formats that do not store it (text, bare .npy).
    z_unit : str, optional
        Unit of the values for formats that do not store it (default meters), e.g. ``"nm"``.

    Raises
    ------
    AFMFileError
        For a missing, empty, truncated, unknown or unusable file, naming the file and the fix.
    """
    p, fmt, maps = _load(path, pixel_size, z_unit)
    hm = _checked(p, pick(maps, channel, p))
    hm.metadata.setdefault("format", fmt.name)
    return hm


def list_channels(path: PathLike) -> list[str]:
    """Names of every channel the file holds, in file order (what ``read(channel=...)`` accepts)."""
    # Names do not depend on scale: dummy pixel size and unit let bare arrays and matrices list too.
    return [hm.channel for hm in _load(path, pixel_size=1.0, z_unit="m")[2]]


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


def describe(path: PathLike, channel: str | None = None,
             pixel_size: tuple[float, float] | float | None = None, z_unit: str | None = None) -> FileInfo:
    """Format, every channel (name, unit, pixels, scan size), and the range of the channel ``read`` takes."""
    p, fmt, maps = _load(path, pixel_size, z_unit)
    chosen = find_height(maps) if channel is None else pick(maps, channel, p)
    if chosen is None:
        return FileInfo(p, fmt.name, [_channel_info(m) for m in maps], None, None)
    hm = _checked(p, chosen)
    return FileInfo(p, fmt.name, [_channel_info(m) for m in maps], _channel_info(hm),
                    (float(hm.data.min()), float(hm.data.max())))


def write(hm: HeightMap, path: PathLike, overwrite: bool = False) -> Path:
    """Write ``hm`` as .gwy, .tiff/.tif, .npy or Gwyddion-style .txt, atomically; returns the path.

    Raises
    ------
    AFMFileError
        If the suffix is not writable, the file exists and ``overwrite`` is false, or writing fails.
    """
    p = Path(path)
    writer = writers.WRITERS.get(p.suffix.lower())
    if writer is None:
        raise AFMFileError(p, f"cannot write {p.suffix!r} files; use one of {sorted(writers.WRITERS)}")
    if p.exists() and not overwrite:
        raise AFMFileError(p, "the file exists; pass overwrite=True (CLI: --force) to replace it")
    if not p.parent.is_dir():
        raise AFMFileError(p, f"the folder {p.parent} does not exist; create it first")
    _guarded(p, "write it", lambda: writer(hm, p, overwrite), _WRITE_HINT)
    return p
