"""Plain-text height maps: Gwyddion ASCII exports (``# Width: 2.000 µm`` header) and bare matrices.

Hand-written: these are NumPy ``loadtxt`` plus a few header lines; a bare matrix (Igor text export,
CSV) carries no pixel size, so the caller gives it, and no z unit, so meters unless told otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from afm_sr.errors import AFMFileError
from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers._common import Hints, hinted_pixel_size, parse_length, scaled

#: A bare matrix whose values exceed this cannot be heights in meters (no AFM scans 1 mm of z).
_MAX_PLAUSIBLE_M = 1e-3


def _header(lines: list[str]) -> dict[str, str]:
    """``# Key: value`` lines at the top of a Gwyddion ASCII export."""
    out = {}
    for line in lines:
        if not line.startswith("#"):
            break
        key, sep, value = line[1:].partition(":")
        if sep:
            out[key.strip().lower()] = value.strip()
    return out


def read_channels(path: Path, hints: Hints) -> list[HeightMap]:
    """Read the one matrix in the file, rows as written (row 0 at the top, as Gwyddion exports it)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    header = _header(lines)
    body = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
    if not body:
        raise AFMFileError(path, "the file holds no numbers")
    delimiter = "," if "," in body[0] else (";" if ";" in body[0] else None)
    data = np.loadtxt(body, delimiter=delimiter, ndmin=2, dtype=np.float64)
    ny, nx = data.shape
    if "width" in header and "height" in header:
        pixel = (parse_length(header["width"]) / nx, parse_length(header["height"]) / ny)
    else:
        pixel = hinted_pixel_size(path, hints, "a plain-text matrix does not say its pixel size")
    unit = header.get("value units") or hints.z_unit
    if unit is None and np.nanmax(np.abs(data)) > _MAX_PLAUSIBLE_M:
        raise AFMFileError(path, f"values up to {np.nanmax(np.abs(data)):.4g} cannot be heights in meters; "
                                 "pass z_unit='nm' (CLI: --z-unit nm) or whatever unit the file uses")
    return [scaled(data, unit or "m", pixel, header.get("channel", "Height"), path, header)]
