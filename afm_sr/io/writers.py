"""Writers for .gwy, .tiff, .npy and Gwyddion-style .txt; each writes to a temp file, then renames it.

The temp file sits in the target's folder so ``os.replace`` is an atomic rename: a reader never sees a
half-written file, and a failed write leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from gwyfile.objects import GwyContainer, GwyDataField, GwySIUnit

from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers.numpy_ import sidecar_path
from afm_sr.io.readers.tiff import DESCRIPTION_KEY

_CM = 1e-2


def _atomic(path: Path, fill: Callable[[Path], None]) -> None:
    """Call ``fill(tmp)`` on a temp file next to ``path``, then rename it to ``path``."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(name)
    try:
        fill(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _plain_metadata(hm: HeightMap) -> dict[str, Any]:
    """Keep the JSON-safe part of ``hm.metadata`` (strings, numbers, booleans)."""
    return {str(k): v for k, v in hm.metadata.items() if isinstance(v, str | int | float | bool)}


def _sidecar(hm: HeightMap) -> dict[str, Any]:
    """Pixel size, channel and z unit: what a format without a header keeps beside the data."""
    return {DESCRIPTION_KEY: 1, "pixel_size_m": list(hm.pixel_size), "channel": hm.channel,
            "z_unit": hm.z_unit, "metadata": _plain_metadata(hm)}


def write_gwy(hm: HeightMap, path: Path) -> None:
    """Write a Gwyddion container with one data field, real x/y size in m and z unit (scale bars)."""
    width, height = hm.scan_size
    field = GwyDataField(np.ascontiguousarray(hm.data, dtype=np.float64), xreal=width, yreal=height,
                         si_unit_xy=GwySIUnit(unitstr="m"), si_unit_z=GwySIUnit(unitstr=hm.z_unit))
    container = GwyContainer({"/0/data": field, "/0/data/title": hm.channel})
    _atomic(path, lambda tmp: container.tofile(str(tmp)))


def write_tiff(hm: HeightMap, path: Path) -> None:
    """Float32 TIFF with the pixel size as resolution tags (px/cm) and as JSON in ImageDescription."""
    data = hm.data.astype(np.float32)
    resolution = (_CM / hm.pixel_size[0], _CM / hm.pixel_size[1])
    _atomic(path, lambda tmp: tifffile.imwrite(tmp, data, description=json.dumps(_sidecar(hm)), metadata=None,
                                               resolution=resolution, resolutionunit="CENTIMETER"))


def write_npy(hm: HeightMap, path: Path) -> None:
    """Float32 ``.npy`` of heights in meters plus a ``<name>.json`` sidecar with the pixel size."""
    def fill(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            np.save(handle, hm.data.astype(np.float32))

    side = sidecar_path(path)
    _atomic(side, lambda tmp: tmp.write_text(json.dumps(_sidecar(hm), indent=1), encoding="utf-8"))
    _atomic(path, fill)


def write_txt(hm: HeightMap, path: Path) -> None:
    """Gwyddion's ASCII export layout: ``# Channel/Width/Height/Value units`` lines, then the matrix."""
    width, height = hm.scan_size
    header = (f"Channel: {hm.channel}\nWidth: {width:.10g} m\nHeight: {height:.10g} m\n"
              f"Value units: {hm.z_unit}")
    _atomic(path, lambda tmp: np.savetxt(tmp, hm.data, fmt="%.9g", delimiter="\t", header=header,
                                         comments="# "))


#: Writer per suffix (lower case).
WRITERS: dict[str, Callable[[HeightMap, Path], None]] = {
    ".gwy": write_gwy, ".tif": write_tiff, ".tiff": write_tiff, ".npy": write_npy, ".txt": write_txt,
}
