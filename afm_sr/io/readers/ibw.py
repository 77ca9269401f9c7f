"""Asylum Research / Igor Pro binary waves (.ibw) through igor2, in Gwyddion's orientation.

igor2 garbles dimension labels (it drops the NUL that ends each 32-byte label), so the channel names
are read here from the label block whose offset the binary header gives.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from igor2 import binarywave

from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers._common import Hints, check_dims, split_unit

_LABEL_BYTES = 32
_HEADER_BYTES = {5: 64 + 320}  # BinHeader5 + WaveHeader5


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
        factor, base = split_unit(_asylum_unit(name, data_unit))
        maps.append(HeightMap(np.flipud(data[:, :, k].T) * factor, (dx, dy), channel=name, z_unit=base,
                              source=path, metadata=note))
    return maps


def _asylum_unit(name: str, data_unit: str) -> str:
    """Asylum stores one data unit for the whole wave; phase layers are degrees, the rest keep it."""
    return "deg" if "Phase" in name else data_unit
