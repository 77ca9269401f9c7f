"""Writers for .gwy, .tiff, .npy and Gwyddion-style .txt; each publishes through ``afm_sr.atomic.write_atomically``.

A failed or interrupted write leaves nothing behind, not even the ``.npy`` sidecar (``afm_sr.atomic`` says how).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from gwyfile.objects import GwyContainer, GwyDataField, GwySIUnit

from afm_sr.atomic import write_atomically
from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers.numpy_ import sidecar_path
from afm_sr.io.readers.tiff import DESCRIPTION_KEY

_CM = 1e-2


def _plain_metadata(hm: HeightMap) -> dict[str, Any]:
    """Keep the JSON-safe part of ``hm.metadata`` (strings, numbers, booleans)."""
    return {str(k): v for k, v in hm.metadata.items() if isinstance(v, str | int | float | bool)}


def _sidecar(hm: HeightMap) -> dict[str, Any]:
    """Pixel size, channel and z unit: what a format without a header keeps beside the data."""
    return {DESCRIPTION_KEY: 1, "pixel_size_m": list(hm.pixel_size), "channel": hm.channel,
            "z_unit": hm.z_unit, "metadata": _plain_metadata(hm)}


def write_gwy(hm: HeightMap, path: Path, overwrite: bool = False) -> None:
    """Write a Gwyddion container with one data field, real x/y size in m and z unit (scale bars)."""
    width, height = hm.scan_size
    field = GwyDataField(np.ascontiguousarray(hm.data, dtype=np.float64), xreal=width, yreal=height,
                         si_unit_xy=GwySIUnit(unitstr="m"), si_unit_z=GwySIUnit(unitstr=hm.z_unit))
    container = GwyContainer({"/0/data": field, "/0/data/title": hm.channel})
    write_atomically({path: lambda tmp: container.tofile(str(tmp))}, overwrite)


def write_tiff(hm: HeightMap, path: Path, overwrite: bool = False) -> None:
    """Float32 TIFF with the pixel size as resolution tags (px/cm) and as JSON in ImageDescription."""
    data = hm.data.astype(np.float32)
    resolution = (_CM / hm.pixel_size[0], _CM / hm.pixel_size[1])
    write_atomically({path: lambda tmp: tifffile.imwrite(tmp, data, description=json.dumps(_sidecar(hm)), metadata=None,
                                                resolution=resolution, resolutionunit="CENTIMETER")}, overwrite)


def write_npy(hm: HeightMap, path: Path, overwrite: bool = False) -> None:
    """Float32 ``.npy`` of heights in meters plus a ``<name>.json`` sidecar with the pixel size (both or neither)."""
    def fill(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            np.save(handle, hm.data.astype(np.float32))

    write_atomically({path: fill, sidecar_path(path): lambda tmp: tmp.write_text(json.dumps(_sidecar(hm), indent=1),
                                                                        encoding="utf-8")}, overwrite)


def write_txt(hm: HeightMap, path: Path, overwrite: bool = False) -> None:
    """Gwyddion's ASCII export layout: ``# Channel/Width/Height/Value units`` lines, then the matrix."""
    width, height = hm.scan_size
    header = (f"Channel: {hm.channel}\nWidth: {width:.10g} m\nHeight: {height:.10g} m\n"
              f"Value units: {hm.z_unit}")
    write_atomically({path: lambda tmp: np.savetxt(tmp, hm.data, fmt="%.9g", delimiter="\t", header=header,
                                          comments="# ")}, overwrite)


#: Bytes per value a writer allocates beside the data while writing (measured: gwyfile serializes it four times).
EXTRA_BYTES = {".gwy": 32, ".tif": 4, ".tiff": 4, ".npy": 4, ".txt": 1}
#: Formats that store heights as float32 (values beyond its range would be written as Inf).
FLOAT32_SUFFIXES = (".tif", ".tiff", ".npy")
#: Writer per suffix (lower case): ``writer(hm, path, overwrite=False)``.
WRITERS: dict[str, Callable[..., None]] = {
    ".gwy": write_gwy, ".tif": write_tiff, ".tiff": write_tiff, ".npy": write_npy, ".txt": write_txt,
}
