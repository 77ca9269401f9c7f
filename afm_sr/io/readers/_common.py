"""Helpers every reader shares: SI unit prefixes, header sanity checks and lazy imports."""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from afm_sr.errors import AFMFileError
from afm_sr.io.budget import reserve
from afm_sr.io.heightmap import HeightMap

#: Largest image a header may announce; anything bigger is a corrupt header, refused before allocating.
MAX_PIXELS = 2**28
#: Bytes per value a read holds beside the decoded values: the float64 copy and its unit-scaled result.
FLOAT64_COPIES = 16

_PREFIX = {"": 1.0, "y": 1e-24, "z": 1e-21, "a": 1e-18, "f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6,
           "µ": 1e-6, "μ": 1e-6, "~": 1e-6, "m": 1e-3, "c": 1e-2, "d": 1e-1, "k": 1e3, "M": 1e6, "G": 1e9}


def split_unit(unit: str) -> tuple[float, str]:
    """Split ``'nm'`` into ``(1e-9, 'm')``: the factor to SI and the base unit (Å is 1e-10 m; A is ampere)."""
    u = unit.strip().replace("\x00", "")
    if u in ("Å", "Ang", "angstrom"):
        return 1e-10, "m"
    for base in ("m", "V", "A", "Hz", "N", "deg", "s"):
        if u.endswith(base) and u[: -len(base)] in _PREFIX:
            prefix = u[: -len(base)]
            return _PREFIX[prefix], base
    return 1.0, u


def to_meters(value: float, unit: str) -> float:
    """Convert a length such as ``(2.5, 'um')`` to meters; raise ValueError for a non-length unit."""
    factor, base = split_unit(unit)
    if base != "m":
        raise ValueError(f"{unit!r} is not a length unit")
    return float(value) * factor


def parse_length(text: str) -> float:
    """Parse a length written with its unit, e.g. ``'10µm'`` or ``'2.000 µm'``, into meters."""
    match = re.fullmatch(r"\s*([-+0-9.eE]+)\s*(\S*)\s*", text)
    if match is None:
        raise ValueError(f"cannot read a length from {text!r}")
    return to_meters(float(match.group(1)), match.group(2) or "m")


def check_dims(path: Path, ny: int, nx: int, what: str = "header") -> None:
    """Refuse a header announcing a non-positive or absurd (> 2**28 px) image before any allocation."""
    if ny < 1 or nx < 1 or ny * nx > MAX_PIXELS:
        raise AFMFileError(path, f"the {what} announces a {ny}x{nx} px image, which cannot be right; "
                                 "the file is probably corrupt")


def reserve_decoded(path: Path, shape: Sequence[int], itemsize: int, what: str) -> None:
    """Count an array about to be decompressed or decoded (plus afm-sr's float64 copies) against the memory budget.

    Called before the decoding library allocates, so a small compressed file announcing gigabytes is refused
    with the size and how to raise the limit (``afm_sr.io.budget``).
    """
    count = math.prod(int(n) for n in shape)
    reserve(count * (int(itemsize) + FLOAT64_COPIES),
            f"{what} ({'x'.join(str(int(n)) for n in shape)} values of {int(itemsize)} bytes, decoded)", path)


def need_bytes(path: Path, available: int, needed: int) -> None:
    """Raise AFMFileError when the file holds fewer bytes than its header promises (truncated file)."""
    if available < needed:
        raise AFMFileError(path, f"the file is truncated: its header promises {needed} bytes of data but "
                                 f"only {available} follow; copy it again from the instrument")


def scaled(data: np.ndarray, unit: str, pixel_size: tuple[float, float], channel: str, path: Path,
           metadata: dict | None = None, gain: float = 1.0, owned: bool = False) -> HeightMap:
    """Wrap ``data`` x ``gain``, given in ``unit``, converted to SI (e.g. nm -> m) in float64; refuse complex data.

    The raw values become float64 before any multiplication: int32 counts and float32 values then keep every
    digit (to float64 rounding), where a product in the file's dtype rounds to float32 (NumPy keeps float32 when
    multiplying by a Python float) and would lose counts above 2**24 (tests/io/test_io_scaled.py). One float64
    array is made and scaled in place; ``owned``: ``data`` is a float64 array nobody else holds, scaled without
    any copy (a large image then costs one array, not three).
    """
    if np.iscomplexobj(data):
        raise AFMFileError(path, f"channel {channel!r} holds complex numbers ({np.asarray(data).dtype}); heights "
                                 "must be real: save the real part or the magnitude (numpy.real / numpy.abs) instead")
    factor, base = split_unit(unit)
    owned = owned and isinstance(data, np.ndarray) and data.dtype == np.float64 and data.flags.writeable
    heights = data if owned else np.array(data, dtype=np.float64)
    if gain * factor != 1.0:
        heights *= gain * factor
    return HeightMap(heights, pixel_size, channel=channel, z_unit=base, source=path, metadata=dict(metadata or {}))


def lazy_import(module: str, fmt: str) -> ModuleType:
    """Import a reader library when its format is first read (some import slowly); AFMFileError if it is missing.

    They are afm-sr dependencies, so a missing one means a broken install: the message says how to repair it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise AFMFileError(None, f"reading {fmt} files needs the package {package!r}, an afm-sr dependency that "
                                 f"cannot be imported ({exc}); repair the install: pip install {package}") from exc


@dataclass(frozen=True)
class Hints:
    """What the user told us that a file may lack: pixel size (dx, dy) in meters and the z unit."""

    pixel_size: tuple[float, float] | None = None
    z_unit: str | None = None


def hinted_pixel_size(path: Path, hints: Hints, why: str) -> tuple[float, float]:
    """Return the user's pixel size, or raise AFMFileError saying why the file needs one and how."""
    if hints.pixel_size is None:
        raise AFMFileError(path, f"{why}; pass pixel_size=(dx, dy) in meters (CLI: --pixel-size 1e-8)")
    return hints.pixel_size
