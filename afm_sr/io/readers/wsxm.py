"""WSxM images (.stp, .top): a ``[Section]`` / ``Key: value`` text header, then the image as little-endian numbers.

Hand-written to read them as Gwyddion's wsxmfile module does; AFMReader 0.0.7 (used before) returns both
rotated by 180 degrees, and for .top it reads only the integer part of ``Z Amplitude`` (59 for 59.7449 nm,
1.25 % low) and shifts the minimum to 0, dropping the height offset the file stores.

- Size: ``Number of rows/columns`` pixels over ``X/Y Amplitude`` (with their unit).
- Order: the file stores the image rotated by 180 degrees against what WSxM and Gwyddion show.
- Heights: floating-point data (.stp: ``double``) are in the unit of ``Z Amplitude``; integer data (.top:
  ``short``, or ``integer``) are counts scaled so that their range spans ``Z Amplitude`` (Gwyddion's rule; on
  our sample it equals the ``Conversion Factor`` x ``DSP voltage range`` / 2^16 the header also gives).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from afm_sr.errors import AFMFileError
from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers._common import Hints, check_dims, need_bytes, parse_length, split_unit

MAGIC = b"WSxM file copyright"
_HEADER_SIZE = re.compile(rb"Image header size: (\d+)")
_QUANTITY = re.compile(r"\s*([-+0-9.eE]+)\s*(\S*)\s*")
#: ``Image Data Type`` values and their NumPy types (files without the line are 16-bit, WSxM 1.0).
_DTYPES = {"short": "<i2", "integer": "<i4", "float": "<f4", "double": "<f8"}


def _header(text: str) -> dict[str, str]:
    """``Key: value`` lines of the header as ``{'Section::Key': value}``."""
    fields, section = {}, ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1]
        elif ":" in stripped:
            key, _, value = stripped.partition(":")
            fields[f"{section}::{key.strip()}"] = value.strip()
    return fields


def _field(path: Path, fields: dict[str, str], key: str) -> str:
    """The header value of ``key`` or AFMFileError naming the missing line."""
    if key not in fields:
        raise AFMFileError(path, f"the WSxM header has no '{key.split('::')[-1]}' line; the file is damaged")
    return fields[key]


def read_channels(path: Path, hints: Hints) -> list[HeightMap]:
    """The one image of the file, in Gwyddion's orientation, heights in SI units."""
    raw = path.read_bytes()
    match = _HEADER_SIZE.search(raw, 0, 256)
    if not raw.startswith(MAGIC) or match is None:
        raise AFMFileError(path, "no 'Image header size' line in the first bytes: not a WSxM image or damaged")
    start = int(match.group(1))
    need_bytes(path, len(raw), start)
    fields = _header(raw[:start].decode("latin-1"))
    ny = int(_field(path, fields, "General Info::Number of rows"))
    nx = int(_field(path, fields, "General Info::Number of columns"))
    check_dims(path, ny, nx, what="WSxM header")
    kind = fields.get("General Info::Image Data Type", "short")
    if kind not in _DTYPES:
        raise AFMFileError(path, f"WSxM data type {kind!r} is not supported (only {', '.join(_DTYPES)})")
    dtype = np.dtype(_DTYPES[kind])
    need_bytes(path, len(raw) - start, nx * ny * dtype.itemsize)
    values = np.frombuffer(raw, dtype=dtype, count=nx * ny, offset=start).reshape(ny, nx)[::-1, ::-1]
    amplitude = _QUANTITY.fullmatch(_field(path, fields, "General Info::Z Amplitude"))
    if amplitude is None:
        raise AFMFileError(path, "the WSxM 'Z Amplitude' is not a number with a unit")
    factor, z_unit = split_unit(amplitude.group(2))
    data = values.astype(np.float64)
    if dtype.kind == "f":
        data *= factor
    else:  # counts spanning Z Amplitude; a constant image has no range to scale and reads as zeros
        span = float(data.max() - data.min())
        data = data * (float(amplitude.group(1)) * factor / span) if span > 0 else np.zeros_like(data)
    width = parse_length(_field(path, fields, "Control::X Amplitude"))
    height = parse_length(_field(path, fields, "Control::Y Amplitude"))
    channel = fields.get("General Info::Acquisition channel") or "Topography"
    return [HeightMap(data, (width / nx, height / ny), channel=channel, z_unit=z_unit, source=path,
                      metadata={k.split("::")[-1]: v for k, v in fields.items()})]
