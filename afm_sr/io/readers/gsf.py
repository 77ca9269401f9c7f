"""Gwyddion Simple Field (.gsf): a text header plus little-endian float32 data.

Hand-written: the format is a dozen ``key = value`` lines (gwyddion.net/documentation/user-guide-en/
gsf.html) and no maintained Python library reads it; gwyfile covers only the native .gwy container.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers._common import Hints, check_dims, need_bytes, scaled, split_unit

MAGIC = b"Gwyddion Simple Field 1.0\n"


def read_channels(path: Path, hints: Hints) -> list[HeightMap]:
    """Read the single field of the file, with XReal/YReal and XYUnits/ZUnits applied."""
    raw = path.read_bytes()
    if not raw.startswith(MAGIC):
        raise ValueError("the file does not start with 'Gwyddion Simple Field 1.0'")
    end = raw.index(b"\0", len(MAGIC))
    header = {}
    for line in raw[len(MAGIC):end].decode("utf-8", errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            header[key.strip()] = value.strip()
    nx, ny = int(header["XRes"]), int(header["YRes"])
    check_dims(path, ny, nx)
    start = end + (4 - end % 4)  # the header is NUL-padded to a multiple of 4 bytes
    need_bytes(path, len(raw) - start, 4 * nx * ny)
    data = np.frombuffer(raw, dtype="<f4", count=nx * ny, offset=start).reshape(ny, nx)
    xy = split_unit(header.get("XYUnits", "m"))[0]
    pixel = (float(header.get("XReal", nx)) * xy / nx, float(header.get("YReal", ny)) * xy / ny)
    return [scaled(data, header.get("ZUnits", "m"), pixel, header.get("Title", "Height"), path, header)]
