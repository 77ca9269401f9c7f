"""NumPy arrays (.npy, .npz) with the pixel size from a sidecar ``<name>.json`` or a folder ``index.csv``.

A sidecar JSON holds ``pixel_size_m`` (one number or ``[dx, dy]``) and optionally ``channel`` and
``z_unit``; ``index.csv`` (as in ``shared/afm-train``) has columns ``file, pixel_size_x_m,
pixel_size_y_m, channel``. Arrays are heights in meters, row 0 at the top.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers._common import Hints, check_dims, hinted_pixel_size, reserve_decoded, scaled

INDEX_NAME = "index.csv"


def sidecar_path(path: Path) -> Path:
    """Where the JSON sidecar of ``path`` lives (``scan.npy`` -> ``scan.json``)."""
    return path.with_suffix(".json")


def _pixel_pair(value: Any) -> tuple[float, float]:
    """``1e-8`` or ``[1e-8, 2e-8]`` as ``(dx, dy)``."""
    values = np.ravel(np.asarray(value, dtype=np.float64))
    return (float(values[0]), float(values[-1]))


def _described(path: Path) -> dict[str, Any]:
    """Return what the sidecar JSON or the folder's index.csv says about ``path`` (empty if neither does)."""
    side = sidecar_path(path)
    if side.is_file():
        info = json.loads(side.read_text(encoding="utf-8"))
        return {**info, "pixel_size": _pixel_pair(info["pixel_size_m"])} if "pixel_size_m" in info else info
    index = path.parent / INDEX_NAME
    if index.is_file():
        with index.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("file") == path.name:
                    info: dict[str, Any] = {"channel": row.get("channel") or "Height", "index": dict(row)}
                    group = re.search(r"group=([^\s;,)]+)", row.get("notes") or "")
                    if group:  # rescans of one area: a split must keep them together
                        info["group"] = group.group(1)
                    if row.get("pixel_size_x_m") and row.get("pixel_size_y_m"):  # empty where unknown
                        info["pixel_size"] = (float(row["pixel_size_x_m"]), float(row["pixel_size_y_m"]))
                    return info
    return {}


def _check_array(path: Path, name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Refuse an array that is not 2-D, absurdly large or over the memory budget, before it is loaded."""
    if len(shape) != 2:
        raise ValueError(f"array {name!r} has shape {shape}; a height map must be 2-D")
    check_dims(path, *shape, what=f"array {name!r}")
    reserve_decoded(path, shape, dtype.itemsize, f"array {name!r}")


def _heightmap(path: Path, name: str, array: np.ndarray, info: dict[str, Any], hints: Hints) -> HeightMap:
    """Wrap one (checked) array with its pixel size and units."""
    pixel = info.get("pixel_size") or hinted_pixel_size(
        path, hints, f"neither {sidecar_path(path).name} nor {INDEX_NAME} gives the pixel size")
    return scaled(array, info.get("z_unit") or hints.z_unit or "m", pixel, name, path,
                  {k: v for k, v in info.items() if k != "pixel_size"})


def read_npy(path: Path, hints: Hints) -> list[HeightMap]:
    """Read a single 2-D array (memory-mapped first, so an absurd shape is refused before reading)."""
    info = _described(path)
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    _check_array(path, str(info.get("channel", "Height")), array.shape, array.dtype)
    return [_heightmap(path, str(info.get("channel", "Height")), array, info, hints)]


def _member_headers(archive: Any) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array in an open ``.npz`` from its ``.npy`` header alone (nothing is decompressed)."""
    headers = {}
    for member in archive.zip.namelist():
        with archive.zip.open(member) as handle:
            version = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(handle)
            headers[member.removesuffix(".npy")] = (tuple(shape), dtype)
    return headers


def read_npz(path: Path, hints: Hints) -> list[HeightMap]:
    """Every 2-D array of an archive as a channel; a ``pixel_size_m`` entry gives the pixel size.

    Shapes are checked from the member headers before anything is loaded, so a header announcing an
    absurd array, or one whose decompressed size passes the memory budget, is refused without allocating it.
    """
    info = _described(path)
    with np.load(path, allow_pickle=False) as archive:
        headers = _member_headers(archive)
        if "pixel_size_m" in headers:
            if int(np.prod(headers["pixel_size_m"][0])) not in (1, 2):
                raise ValueError(f"pixel_size_m has shape {headers['pixel_size_m'][0]}; give one value or (dx, dy)")
            info["pixel_size"] = _pixel_pair(archive["pixel_size_m"])
        images = [name for name, (shape, _) in headers.items() if len(shape) == 2]
        for name in images:
            _check_array(path, name, *headers[name])
        return [_heightmap(path, name, archive[name], info, hints) for name in images]
