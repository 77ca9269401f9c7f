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
_RATIONAL_MAX = 2**32 - 1
#: float32 is kept where its rounding error stays under this share of the data's detail (see ``storage_dtype``).
FLOAT32_TOLERANCE = 0.01
#: Values per block while measuring that (bounds the memory the check takes).
_BLOCK = 1 << 20


def _plain_metadata(hm: HeightMap) -> dict[str, Any]:
    """Keep the JSON-safe part of ``hm.metadata`` (strings, numbers, booleans)."""
    return {str(k): v for k, v in hm.metadata.items() if isinstance(v, str | int | float | bool)}


def _sidecar(hm: HeightMap) -> dict[str, Any]:
    """Pixel size, channel and z unit: what a format without a header keeps beside the data."""
    return {DESCRIPTION_KEY: 1, "pixel_size_m": list(hm.pixel_size), "channel": hm.channel,
            "z_unit": hm.z_unit, "metadata": _plain_metadata(hm)}


def float32_suffices(data: np.ndarray) -> bool:
    """Whether float32 keeps ``data``'s detail: its rounding error under 1% of the std of neighbour differences.

    Heights of 1 km with nm detail round to one value in float32 (its step there is 61 um); a scan of a few um with
    pm detail loses nothing. Measured in row blocks, so a large map costs no full-size copies.
    """
    rows = max(1, _BLOCK // max(1, data.shape[1]))
    worst, count, total, squares = 0.0, 0, 0.0, 0.0
    for start in range(0, data.shape[0], rows):
        block = np.asarray(data[max(0, start - 1):start + rows], dtype=np.float64)  # one row of overlap for dy
        worst = max(worst, float(np.max(np.abs(block - block.astype(np.float32)))))
        for diff in (np.diff(block[1 if start else 0:], axis=1), np.diff(block, axis=0)):
            count, total, squares = count + diff.size, total + float(diff.sum()), squares + float(np.square(diff).sum())
    detail = np.sqrt(max(0.0, squares / count - (total / count) ** 2)) if count else 0.0
    return worst <= FLOAT32_TOLERANCE * detail


def storage_dtype(hm: HeightMap) -> type[np.floating]:
    """float32 for .tiff/.npy where it keeps the data (``float32_suffices``), else float64: never lose it silently."""
    return np.float32 if float32_suffices(hm.data) else np.float64


def write_gwy(hm: HeightMap, path: Path, overwrite: bool = False) -> None:
    """Write a Gwyddion container with one data field, real x/y size in m, z unit (scale bars) and metadata."""
    width, height = hm.scan_size
    field = GwyDataField(np.ascontiguousarray(hm.data, dtype=np.float64), xreal=width, yreal=height,
                         si_unit_xy=GwySIUnit(unitstr="m"), si_unit_z=GwySIUnit(unitstr=hm.z_unit))
    container = GwyContainer({"/0/data": field, "/0/data/title": hm.channel})
    meta = _plain_metadata(hm)
    if meta:  # Gwyddion's Metadata browser shows /0/meta (the self-check among it); afm-sr reads it back
        container["/0/meta"] = GwyContainer({k: str(v) for k, v in meta.items()})
    write_atomically({path: lambda tmp: container.tofile(str(tmp))}, overwrite)


def write_tiff(hm: HeightMap, path: Path, overwrite: bool = False) -> None:
    """Float32 (float64 where float32 would lose detail) TIFF, pixel size as resolution tags (px/cm) and JSON."""
    data = hm.data.astype(storage_dtype(hm), copy=False)
    resolution = (_CM / hm.pixel_size[0], _CM / hm.pixel_size[1])
    # A TIFF rational holds at most 2**32 - 1 px/cm (pixels down to 2.3 pm); below that only the JSON keeps the size.
    tags = ({"resolution": resolution, "resolutionunit": "CENTIMETER"} if max(resolution) < _RATIONAL_MAX
            else {"resolutionunit": "NONE"})
    write_atomically({path: lambda tmp: tifffile.imwrite(tmp, data, description=json.dumps(_sidecar(hm)), metadata=None,
                                                         **tags)}, overwrite)


def write_npy(hm: HeightMap, path: Path, overwrite: bool = False) -> None:
    """Float32 (float64 where float32 would lose detail) ``.npy`` in meters plus a JSON sidecar (both or neither)."""
    def fill(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            np.save(handle, hm.data.astype(storage_dtype(hm), copy=False))

    write_atomically({path: fill, sidecar_path(path): lambda tmp: tmp.write_text(json.dumps(_sidecar(hm), indent=1),
                                                                        encoding="utf-8")}, overwrite)


def write_txt(hm: HeightMap, path: Path, overwrite: bool = False) -> None:
    """Gwyddion's ASCII export layout: ``# Channel/Width/Height/Value units`` lines, then the matrix.

    9 significant digits (float32's precision) where they keep the data, else 17 (every float64 digit).
    """
    width, height = hm.scan_size
    header = (f"Channel: {hm.channel}\nWidth: {width:.10g} m\nHeight: {height:.10g} m\n"
              f"Value units: {hm.z_unit}")
    fmt = "%.9g" if float32_suffices(hm.data) else "%.17g"
    write_atomically({path: lambda tmp: np.savetxt(tmp, hm.data, fmt=fmt, delimiter="\t", header=header,
                                          comments="# ")}, overwrite)


def companions(path: Path) -> list[Path]:
    """The files a writer publishes together with ``path`` (the ``.npy`` sidecar), so they are checked up front too."""
    return [sidecar_path(path)] if path.suffix.lower() == ".npy" else []


#: Bytes per value a writer allocates beside the data while writing (measured: gwyfile serializes it four times).
EXTRA_BYTES = {".gwy": 32, ".tif": 4, ".tiff": 4, ".npy": 4, ".txt": 1}
#: Formats that store heights as float32 (values beyond its range would be written as Inf).
FLOAT32_SUFFIXES = (".tif", ".tiff", ".npy")
#: Writer per suffix (lower case): ``writer(hm, path, overwrite=False)``.
WRITERS: dict[str, Callable[..., None]] = {
    ".gwy": write_gwy, ".tif": write_tiff, ".tiff": write_tiff, ".npy": write_npy, ".txt": write_txt,
}
