"""NT-MDT .mdt files: a 33-byte file header, then frames; the image frames are read, the others skipped.

Hand-written: no maintained light library reads .mdt (SciFiReaders' reader pulls dask and numba). The layout
follows NT-MDT's frame structure as Gwyddion's nt-mdt module reads it; little-endian throughout. Our sample
(an MDA frame) matches Gwyddion 2.62's channel name, pixels, scan size and unit; no sample has a type-0 frame.

File header: signature (4 bytes, ``01 B0 ..``), uint32 file size - 33, 4 reserved, uint16 index of the last
frame, 19 reserved. Each frame: uint32 size (with this 22-byte header), uint16 type, 2 version bytes, 6 uint16
date and time, uint16 size of the frame's variables; then, by type:

- 0, scanned image: x, y and z axis scales (float32 offset, float32 step, int16 unit code each) at the start
  of the variables; after them (22 + variables size) uint16 mode, xres, yres, number of dots; the image as
  int16 counts, rows bottom-up; uint32 title length and title (cp1251). Size = pixels x |step|, heights =
  counts x z step (the z offset is not added).
- 106, MDA ("multidimensional array"): a 76-byte head (sizes of the name, comment, view info, spec, source
  info, variables and data blocks), those blocks, then the variables: uint32 size, uint32 length of an
  array record (uint64 cells, uint32 bytes per cell, uint32 dimensions, uint32 measurands), one calibration
  per dimension and per measurand, then the data. A calibration is uint32 total and internal lengths, then
  name, comment and unit lengths, uint64 SI code, accuracy, function id, float64 bias and scale, uint64 min
  and max index, int32 data type, author length, (padding to the internal length), then the strings. A
  frame with two dimensions is an image: x fastest, rows bottom-up, values = raw x scale + bias. Like
  Gwyddion, the scan size is (max index - min index) x scale, the size the instrument reports.
- others (text 3, spectroscopy, curves 190, ...): skipped.

Channels are named like Gwyddion's: ``<frame name> (<frame number from 1>)``, e.g. ``1F:Iprobe (2)``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from afm_sr.errors import AFMFileError
from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers._common import Hints, check_dims, need_bytes, split_unit

MAGIC = b"\x01\xb0"
_FILE_HEADER, _FRAME_HEADER = 33, 22
_SCANNED, _MDA = 0, 106
#: Unit codes of type-0 axis scales (NT-MDT's table, as in Gwyddion's nt-mdt module).
_UNITS = {-5: "m", -4: "cm", -3: "mm", -2: "um", -1: "nm", 0: "Å", 1: "nA", 2: "V", 3: "", 4: "kHz", 5: "deg",
          6: "%", 7: "°C", 8: "V", 9: "s", 10: "ms", 11: "us", 12: "ns", 13: "", 14: "px"}
#: MDA data type codes: -(bytes) signed, +(bytes) unsigned, -(bytes + 256 x mantissa bits) floating point.
_MDA_TYPES = {-1: "<i1", 1: "<u1", -2: "<i2", 2: "<u2", -4: "<i4", 4: "<u4", -8: "<i8", 8: "<u8",
              -(4 + 23 * 256): "<f4", -(8 + 52 * 256): "<f8"}


def _corrupt(path: Path, problem: str) -> AFMFileError:
    """The error for a structure that contradicts itself or the file's size."""
    return AFMFileError(path, f"the NT-MDT file is damaged ({problem}); it is truncated or corrupt")


def _unpack(path: Path, fmt: str, raw: bytes, pos: int, end: int) -> tuple:
    """``struct.unpack_from(fmt, raw, pos)``, refusing fields that reach past ``end`` (the end of the frame)."""
    if pos < 0 or pos + struct.calcsize(fmt) > end:
        raise _corrupt(path, f"a field at byte {pos} runs past the end of its frame")
    return struct.unpack_from(fmt, raw, pos)


def _text(raw: bytes, pos: int, size: int, encoding: str = "utf-8") -> str:
    """The string of ``size`` bytes at ``pos``, NULs dropped."""
    return raw[pos:pos + size].decode(encoding, errors="replace").replace("\0", "").strip()


def _scanned(path: Path, raw: bytes, start: int, end: int, number: int) -> HeightMap:
    """A type-0 scanned-image frame."""
    scales = [_unpack(path, "<ffh", raw, start + _FRAME_HEADER + 10 * k, end) for k in range(3)]
    (var_size,) = _unpack(path, "<H", raw, start + 20, end)
    pos = start + _FRAME_HEADER + var_size
    _, nx, ny, n_dots = _unpack(path, "<4H", raw, pos, end)
    check_dims(path, ny, nx, what=f"frame {number}")
    if n_dots:
        raise AFMFileError(path, f"frame {number} holds {n_dots} spectroscopy dots, which afm-sr cannot read yet")
    pos += 8
    need_bytes(path, end - pos, 2 * nx * ny)
    counts = np.frombuffer(raw, "<i2", nx * ny, pos).reshape(ny, nx)[::-1]
    pos += 2 * nx * ny
    title_len = struct.unpack_from("<I", raw, pos)[0] if pos + 4 <= end else 0
    units = [_UNITS.get(unit) for _, _, unit in scales]
    if None in units:
        raise _corrupt(path, f"frame {number} has an unknown unit code in {[u for _, _, u in scales]}")
    xy_factor, xy_base = split_unit(units[0])  # type: ignore[arg-type]
    z_factor, z_base = split_unit(units[2])  # type: ignore[arg-type]
    if xy_base != "m":
        raise _corrupt(path, f"frame {number} gives its x/y scale in {units[0]!r}, not a length")
    title = _text(raw, pos + 4, max(0, min(title_len, end - pos - 4)), "cp1251") or (
        "Topography" if z_base == "m" else "Channel")
    pixel = (abs(scales[0][1]) * xy_factor, abs(scales[1][1]) * xy_factor)
    return HeightMap(counts * (scales[2][1] * z_factor), pixel, channel=f"{title} ({number})", z_unit=z_base,
                     source=path, metadata={"mdt_frame": number, "mdt_frame_type": "scanned"})


def _calibration(path: Path, raw: bytes, pos: int, end: int) -> tuple[dict, int]:
    """One MDA calibration at ``pos``: its fields and the position after it."""
    total, internal = _unpack(path, "<2I", raw, pos, end)
    fields = _unpack(path, "<3IQdQddqqiI", raw, pos + 8, end)
    name_len, comment_len, unit_len = fields[:3]
    bias, scale, lo, hi, dtype = fields[6:11]
    strings = pos + 8 + internal
    if total < 8 + internal or strings + name_len + comment_len + unit_len > min(end, pos + total):
        raise _corrupt(path, f"an MDA calibration at byte {pos} has inconsistent lengths")
    unit = _text(raw, strings + name_len + comment_len, unit_len)
    return {"name": _text(raw, strings, name_len), "unit": unit, "bias": bias, "scale": scale,
            "count": hi - lo + 1, "dtype": dtype}, pos + total


def _mda(path: Path, raw: bytes, start: int, end: int, number: int) -> list[HeightMap]:
    """The images of a type-106 MDA frame (none where it is not two-dimensional)."""
    head = start + _FRAME_HEADER
    head_size, _ = _unpack(path, "<2I", raw, head, end)
    # status, then the sizes of name, comment, view info, spec, source info, variables; data offset and size
    sizes = _unpack(path, "<9I", raw, head + 40, end)
    name_size, var_size, data_size = sizes[1], sizes[6], sizes[8]
    frame_name = _text(raw, head + head_size, name_size)
    pos = head + head_size + sum(sizes[1:6])
    vars_end = pos + var_size
    if vars_end > end:
        raise _corrupt(path, f"the variables of frame {number} run past its end")
    _, record_len = _unpack(path, "<2I", raw, pos, vars_end)
    cells, cell_size, n_dims, n_measurands = _unpack(path, "<QIII", raw, pos + 8, vars_end)
    pos += 8 + record_len
    if n_dims != 2 or not n_measurands:
        return []  # spectra and curves: not an image
    calibrations = []
    for _ in range(n_dims + n_measurands):
        calibration, pos = _calibration(path, raw, pos, vars_end)
        calibrations.append(calibration)
    (x, y), measurands = calibrations[:2], calibrations[2:]
    nx, ny = x["count"], y["count"]
    check_dims(path, ny, nx, what=f"frame {number}")
    if cells != nx * ny:
        raise _corrupt(path, f"frame {number} holds {cells} cells for a {nx}x{ny} px image")
    need_bytes(path, min(end - vars_end, data_size), cells * cell_size)
    (xy_factor, x_base), (y_factor, y_base) = split_unit(x["unit"]), split_unit(y["unit"])
    if (x_base, y_base) != ("m", "m"):
        return []  # a map over something other than x and y (e.g. bias): not an image
    pixel = (abs(x["scale"]) * xy_factor * (nx - 1) / nx, abs(y["scale"]) * y_factor * (ny - 1) / ny)
    maps, offset = [], 0
    for k, m in enumerate(measurands):
        if m["dtype"] not in _MDA_TYPES:
            raise AFMFileError(path, f"frame {number} stores data type {m['dtype']}, which afm-sr cannot read")
        dtype = np.dtype(_MDA_TYPES[m["dtype"]])
        if offset + dtype.itemsize > cell_size:
            raise _corrupt(path, f"the measurands of frame {number} do not fit its {cell_size}-byte cells")
        values = np.ndarray((cells,), dtype, raw, vars_end + offset, (cell_size,)).reshape(ny, nx)[::-1]
        offset += dtype.itemsize
        factor, base = split_unit(m["unit"])
        label = frame_name or m["name"]
        label = f"{label} {m['name']}" if len(measurands) > 1 else label
        maps.append(HeightMap((values * m["scale"] + m["bias"]) * factor, pixel, channel=f"{label} ({number})",
                              z_unit=base, source=path,
                              metadata={"mdt_frame": number, "mdt_frame_type": "MDA", "measurand": k}))
    return maps


def read_channels(path: Path, hints: Hints) -> list[HeightMap]:
    """The image of every scanned-image and two-dimensional MDA frame, in file order."""
    raw = path.read_bytes()
    if not raw.startswith(MAGIC) or len(raw) < _FILE_HEADER:
        raise AFMFileError(path, "the file does not start like an NT-MDT file")
    (size,) = struct.unpack_from("<I", raw, 4)
    need_bytes(path, len(raw) - _FILE_HEADER, size)
    (last,) = struct.unpack_from("<H", raw, 12)
    maps, start = [], _FILE_HEADER
    for number in range(1, last + 2):
        frame_size, kind = _unpack(path, "<IH", raw, start, len(raw))
        end = start + frame_size
        if frame_size < _FRAME_HEADER or end > len(raw):
            raise _corrupt(path, f"frame {number} of {last + 1} claims {frame_size} bytes at byte {start}")
        if kind == _SCANNED:
            maps.append(_scanned(path, raw, start, end, number))
        elif kind == _MDA:
            maps += _mda(path, raw, start, end, number)
        start = end
    return maps
