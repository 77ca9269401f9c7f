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
import zlib
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
#: TIFF compression codes of deflate (zlib), and the compressed bytes read (and inflated) per step.
_DEFLATE, _PIECE = (8, 32946), 1 << 20
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


def _inflated(page: tifffile.TiffPage) -> np.ndarray | None:
    """A one-strip deflated page (no predictor) inflated piece by piece into float64; None for any other page.

    zlib would otherwise return the whole strip as one bytes object, which tifffile then copies into an array:
    two full copies before afm-sr's own. Anything unexpected (damaged data, a short strip) returns None, so
    ``asarray`` decodes the page and reports the damage as it always did.
    """
    if (page.compression not in _DEFLATE or page.predictor != 1 or page.fillorder != 1 or page.is_tiled
            or len(page.shape) != 2 or page.dtype is None or page.bitspersample != 8 * page.dtype.itemsize):
        return None
    dtype = np.dtype(page.dtype).newbyteorder(page.parent.byteorder)
    (ny, nx), row = page.shape, page.shape[1] * dtype.itemsize
    out = np.empty((ny, nx), np.float64)
    inflater, pending, done = zlib.decompressobj(), bytearray(), 0
    handle = page.parent.filehandle
    handle.seek(page.dataoffsets[0])
    left = page.databytecounts[0]
    try:
        while done < ny:
            if inflater.unconsumed_tail:
                pending += inflater.decompress(inflater.unconsumed_tail, _PIECE)
            elif left > 0:
                data = handle.read(min(_PIECE, left))
                left -= len(data)
                pending += inflater.decompress(data, _PIECE)
            else:
                return None
            rows = min(len(pending) // row, ny - done)
            out[done:done + rows] = np.frombuffer(pending, dtype, count=rows * nx).reshape(rows, nx)
            del pending[:rows * row]
            done += rows
    except zlib.error:
        return None
    return out


def _float64(page: tifffile.TiffPage) -> np.ndarray:
    """The page's values as a new float64 array, decoded strip by strip (or tile by tile) straight into it.

    tifffile's ``asarray`` decodes into an array of the file's dtype, which the float64 conversion then copies (a
    float32 image three times over at the peak); here only one strip at a time exists in the file's dtype. A page
    stored as one deflated strip is inflated a few MiB at a time (``_inflated``); other single-piece pages are
    decoded by ``asarray`` in one go.
    """
    key = page.keyframe
    if len(page.dataoffsets) < 2:
        inflated = _inflated(page) if len(page.dataoffsets) == 1 else None
        return inflated if inflated is not None else np.asarray(page.asarray(), dtype=np.float64)
    out = np.empty(key.shaped, np.float64)

    def place(decoded: tuple) -> None:
        segment, (s, d, h, w, _), shape = decoded
        target = out[s, d:d + shape[0], h:h + shape[1], w:w + shape[2]]
        target[...] = key.nodata if segment is None else segment[:key.imagedepth - d, :key.imagelength - h,
                                                                 :key.imagewidth - w]

    for _ in page.segments(func=place, sort=True, maxworkers=1, buffersize=_PIECE):
        pass
    return out.reshape(page.shape)


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
            maps.append(scaled(_float64(page), info.get("z_unit") or hints.z_unit or "m", pixel,
                               info.get("channel", f"Page {k}"), path, info.get("metadata", {}), owned=True))
    return maps
