"""Asylum Research / Igor Pro binary waves (.ibw) through igor2, in Gwyddion's orientation.

igor2 garbles dimension labels (it drops the NUL that ends each 32-byte label), so the channel names
are read here from the label block whose offset the binary header gives.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from igor2 import binarywave

from afm_sr.errors import AFMFileError
from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers._common import Hints, check_dims, need_bytes, scaled, split_unit

_LABEL_BYTES = 32
_WAVE_HEADER5 = 320
_HEADER_BYTES = {5: 64 + _WAVE_HEADER5}  # BinHeader5 + WaveHeader5
#: Offsets (bytes from the file start) of the v5 header fields checked before igor2 sees the file.
_WFM_SIZE, _SECTION_SIZES, _NPNTS, _TYPE, _NDIM = 4, 8, 76, 80, 132


def _check_header(path: Path, raw: bytes) -> None:
    """Refuse what igor2 would choke on (with an assertion or a multi-megabyte log line) or over-allocate for.

    Only version 5 waves hold images (versions 1-3 are 1-D); the header's point count must match its
    dimensions and its byte count, the image must be of a sane size and the file must hold all of it (data,
    formula, note, units and labels; Asylum may append more after them).
    """
    if len(raw) < _HEADER_BYTES[5]:
        raise AFMFileError(path, f"the file is truncated: {len(raw)} bytes is shorter than an Igor wave header")
    order = next((o for o in "<>" if struct.unpack_from(f"{o}h", raw, 0)[0] in (1, 2, 3, 5)), None)
    if order is None:
        raise AFMFileError(path, "this is not an Igor binary wave (unknown version field); wrong extension or a "
                                 "damaged file")
    version = struct.unpack_from(f"{order}h", raw, 0)[0]
    if version != 5:
        raise AFMFileError(path, f"Igor binary wave version {version} holds 1-D data only; afm-sr reads image "
                                 "waves (version 5, as Asylum software writes them)")
    (wfm_size,) = struct.unpack_from(f"{order}i", raw, _WFM_SIZE)
    (npnts,) = struct.unpack_from(f"{order}i", raw, _NPNTS)
    (wave_type,) = struct.unpack_from(f"{order}h", raw, _TYPE)
    dims = struct.unpack_from(f"{order}4i", raw, _NDIM)
    dtype = binarywave.TYPE_TABLE.get(wave_type)
    if dtype is None:
        raise AFMFileError(path, f"the wave holds no numbers (Igor type {wave_type}); afm-sr reads numeric image "
                                 "waves")
    check_dims(path, dims[1], dims[0])
    layers = max(dims[2], 1) * max(dims[3], 1)
    itemsize = np.dtype(dtype).itemsize
    if min(dims[2:]) < 0 or npnts != dims[0] * dims[1] * layers or wfm_size - _WAVE_HEADER5 != npnts * itemsize:
        raise AFMFileError(path, f"the header is inconsistent ({npnts} points for dimensions {list(dims)}, "
                                 f"{wfm_size - _WAVE_HEADER5} data bytes); the file is probably corrupt")
    sections = struct.unpack_from(f"{order}3i4i4i", raw, _SECTION_SIZES)  # formula, note, units, dim units, labels
    if min(sections) < 0:
        raise AFMFileError(path, "the header gives a negative section size; the file is probably corrupt")
    need_bytes(path, len(raw) - _HEADER_BYTES[5], npnts * itemsize + sum(sections))


def _labels(raw: bytes, version: int, wave: dict, n_layers: int) -> list[str]:
    """Layer (third-dimension) labels of a v5 wave, or ``Layer k`` where the file has none."""
    bin_header, data = wave["bin_header"], wave["wData"]
    default = [f"Layer {k}" for k in range(n_layers)]
    if version != 5:
        return default
    start = (_HEADER_BYTES[5] + data.nbytes + bin_header["formulaSize"] + bin_header["noteSize"]
             + bin_header["dataEUnitsSize"] + sum(bin_header["dimEUnitsSize"]))
    sizes = list(bin_header["dimLabelsSize"])
    start += sum(sizes[:2])
    block = raw[start:start + sizes[2]]
    names = [block[i:i + _LABEL_BYTES].split(b"\0")[0].decode("latin-1").strip()
             for i in range(0, len(block), _LABEL_BYTES)][1:]  # label 0 names the dimension itself
    padded = (names + [""] * n_layers)[:n_layers]
    return [n or d for n, d in zip(padded, default, strict=True)]


def _note(wave: dict) -> dict[str, str]:
    """Parse the wave note into ``key: value`` pairs (Asylum writes scan parameters there)."""
    text = wave.get("note", b"").decode("latin-1", errors="replace")
    pairs = (line.split(":", 1) for line in text.replace("\r", "\n").split("\n") if ":" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def read_channels(path: Path, hints: Hints) -> list[HeightMap]:
    """Every image layer of the wave, row 0 at the top (``flipud(w[:, :, k].T)``), pixel size from scaling."""
    raw = path.read_bytes()
    _check_header(path, raw)
    loaded = binarywave.load(str(path))
    wave = loaded["wave"]
    data = np.asarray(wave["wData"])
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3:
        raise ValueError(f"the wave has {data.ndim} dimension(s); an image needs 2 or 3")
    check_dims(path, data.shape[1], data.shape[0])
    header = wave["wave_header"]
    units = [u.decode("latin-1") if isinstance(u, bytes) else str(u) for u in np.ravel(header["dimUnits"])]
    dx = float(header["sfA"][0]) * split_unit(units[0] if units else "m")[0]
    dy = float(header["sfA"][1]) * split_unit(units[1] if len(units) > 1 else "m")[0]
    data_unit = (header["dataUnits"][0] if len(header["dataUnits"]) else b"").decode("latin-1") or "m"
    note = _note(wave)
    maps = []
    for k, name in enumerate(_labels(raw, loaded["version"], wave, data.shape[2])):
        maps.append(scaled(np.flipud(data[:, :, k].T), _asylum_unit(name, data_unit), (dx, dy), name, path, note))
    return maps


#: Layers whose unit Asylum does not store: name prefix -> unit (as Gwyddion's igorfile module assigns them).
_LAYER_UNITS = {"Phase": "deg", "UserIn": "V", "Bias": "V", "Potential": "V", "Current": "A", "Frequency": "Hz"}


def _asylum_unit(name: str, data_unit: str) -> str:
    """Asylum stores one data unit (m) for the whole wave; phase, voltage, current, frequency layers get theirs."""
    return next((unit for prefix, unit in _LAYER_UNITS.items() if name.startswith(prefix)), data_unit)
