"""TIFF height maps through tifffile: afm-sr's own float32 TIFFs, Park Systems TIFFs and plain float TIFFs.

Park Systems (PSIA) files keep the real data in private tag 50434 and a binary header in tag 50435;
tifffile hands over both, and the few header fields used here are decoded by hand (offsets from the
PSIA TIFF specification as implemented by Gwyddion's psia module); rows are stored bottom-up.

afm-sr writes the pixel size and units as JSON in the ImageDescription tag (see ``afm_sr.io.writers``);
any other single-channel TIFF needs the pixel size from the caller, and its values are taken as heights
in the unit given (meters by default).
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import tifffile

from afm_sr.errors import AFMFileError
from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers._common import (
    Hints,
    check_dims,
    hinted_pixel_size,
    need_bytes,
    reserve_decoded,
    scaled,
    to_meters,
)

MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
#: The key afm-sr puts in its ImageDescription JSON, so foreign JSON descriptions are not misread.
DESCRIPTION_KEY = "afm_sr"
_PARK_DATA, _PARK_HEADER = 50434, 50435
_PARK_DTYPES = {0: "<i2", 1: "<i4", 2: "<f4"}


class _Damage(logging.Handler):
    """Collects the errors tifffile only logs (it drops a tag pointing past the end of the file and goes on)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def intact_tiff(path: Path) -> Iterator[tifffile.TiffFile]:
    """Open ``path`` with tifffile and parse every page; AFMFileError if tifffile found damage or data is missing.

    A truncated file otherwise loses its private tags quietly (a Park file then reads as a plain TIFF asking for
    a pixel size) and tifffile's complaints go to the user's terminal instead of into one clear error.
    """
    logger = logging.getLogger("tifffile")
    damage, propagate = _Damage(), logger.propagate
    logger.addHandler(damage)
    logger.propagate = False
    try:
        with tifffile.TiffFile(path) as tif:
            pages = list(tif.pages)
            size = path.stat().st_size
            for k, page in enumerate(pages):
                if any(o + n > size for o, n in zip(page.dataoffsets, page.databytecounts, strict=False)):
                    damage.messages.append(f"the data of page {k} ends past the end of the file")
            if damage.messages:
                raise AFMFileError(path, f"the TIFF is truncated or damaged ({damage.messages[0]}); copy it again "
                                         "from the instrument")
            yield tif
    finally:
        logger.removeHandler(damage)
        logger.propagate = propagate


def _utf16(raw: bytes, start: int, end: int) -> str:
    """Decode a NUL-terminated UTF-16LE string field of the PSIA header."""
    return raw[start:end].decode("utf-16-le", errors="replace").split("\0")[0]


def _park(path: Path, page: tifffile.TiffPage) -> HeightMap:
    """Read the Park Systems image of ``page``: heights = raw x data gain, in the header's z unit."""
    header = page.tags[_PARK_HEADER].value
    nx, ny = struct.unpack_from("<ii", header, 100)
    check_dims(path, ny, nx, what="Park header")
    width, height = struct.unpack_from("<dd", header, 140)
    xy_unit = _utf16(header, 188, 204) or "um"
    (gain,) = struct.unpack_from("<d", header, 220)
    (dtype_code,) = struct.unpack_from("<i", header, 348)
    dtype = np.dtype(_PARK_DTYPES[dtype_code])
    raw = page.tags[_PARK_DATA].value
    need_bytes(path, len(raw), nx * ny * dtype.itemsize)
    data = np.frombuffer(raw, dtype=dtype, count=nx * ny).reshape(ny, nx)[::-1]
    pixel = (to_meters(width, xy_unit) / nx, to_meters(height, xy_unit) / ny)
    return scaled(data, _utf16(header, 244, 260) or "um", pixel, _utf16(header, 4, 68), path,
                  {"head_mode": _utf16(header, 68, 84)}, gain=gain)


def read_channels(path: Path, hints: Hints) -> list[HeightMap]:
    """Each page that is a 2-D image, with the pixel size from afm-sr's description or from ``hints``."""
    maps = []
    with intact_tiff(path) as tif:
        for k, page in enumerate(tif.pages):
            if _PARK_HEADER in page.tags:
                maps.append(_park(path, page))
                continue
            if len(page.shape) != 2:
                continue
            check_dims(path, *page.shape, what=f"TIFF page {k}")
            reserve_decoded(path, page.shape, page.dtype.itemsize, f"TIFF page {k}")
            try:
                info = json.loads(page.description or "{}")
            except json.JSONDecodeError:
                info = {}
            info = info if isinstance(info, dict) and DESCRIPTION_KEY in info else {}
            if info:
                pixel = (float(info["pixel_size_m"][0]), float(info["pixel_size_m"][1]))
            else:
                pixel = hinted_pixel_size(path, hints, "this TIFF does not record its pixel size in meters")
            maps.append(scaled(page.asarray(), info.get("z_unit") or hints.z_unit or "m", pixel,
                               info.get("channel", f"Page {k}"), path, info.get("metadata", {})))
    return maps
