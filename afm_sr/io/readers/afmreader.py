"""JPK high-speed HDF5 files (.h5-jpk) through AFMReader.

AFMReader returns heights and pixel sizes in nanometres; they are converted to meters here. (JPK's TIFF-based
.jpk and WSxM files were read through AFMReader too; ``jpk.py`` and ``wsxm.py`` say why they no longer are.)
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from afm_sr.errors import AFMFileError
from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers._common import MAX_PIXELS, Hints, lazy_import, reserve_decoded

_log = logging.getLogger(__name__)
_NM = 1e-9
#: The HDF5 attribute giving the side of each JPK high-speed frame (AFMReader allocates frames x side^2).
_H5_SIDE_ATTR = "position-pattern.grid.ilength"
#: Channels AFMReader multiplies by 1e9 (to nm), and their unit once divided back; the others keep their raw value.
_TIMES_1E9 = {"height": "m", "measuredheight": "m", "amplitude": "m", "error": ""}


def _check_h5_sizes(path: Path, handle: Any, h5py: ModuleType) -> None:
    """Refuse datasets or a frame side that would make AFMReader allocate more than the file can hold.

    Datasets may be gzip-compressed: each one's decompressed size is counted against the memory budget.
    """
    datasets = []
    handle.visititems(lambda name, obj: datasets.append(obj) if isinstance(obj, h5py.Dataset) else None)
    big = next((d for d in datasets if d.size > MAX_PIXELS), None)
    if big is not None:
        raise AFMFileError(path, f"dataset {big.name} announces {big.shape} values, which cannot be right; the "
                                 "file is probably corrupt")
    for d in datasets:
        reserve_decoded(path, d.shape, d.dtype.itemsize, f"dataset {d.name}")
    longest = max((d.shape[0] for d in datasets if d.ndim == 2), default=0)
    for group in (handle, *(handle[k] for k in handle if isinstance(handle[k], h5py.Group))):
        side = int(group.attrs.get(_H5_SIDE_ATTR, 0))
        if side < 0 or side * side > longest:
            raise AFMFileError(path, f"{group.name} announces {side}x{side} px frames but its data holds at most "
                                     f"{longest} px per frame; the file is probably corrupt")


def read_h5jpk(path: Path, hints: Hints) -> list[HeightMap]:
    """Every frame of every channel of a JPK high-speed HDF5 file, named ``<channel> [frame k]``."""
    h5_jpk = lazy_import("AFMReader.h5_jpk", "JPK HDF5")
    lazy_import("loguru", "JPK HDF5").logger.disable("AFMReader")  # AFMReader enables its logging on import
    h5py = lazy_import("h5py", "JPK HDF5")
    with h5py.File(path, "r") as handle:
        _check_h5_sizes(path, handle, h5py)
        names = list(h5_jpk._available_channels(handle))  # AFMReader has no public channel listing
    maps = []
    for name in names:
        try:
            stack, px_nm, _ = h5_jpk.load_h5jpk(path, name)
        except KeyError:  # AFMReader 0.0.7 mis-spells some channel groups (e.g. 'Measuredheight')
            _log.warning("%s: AFMReader cannot load channel %r; skipping it", path, name)
            continue
        kind = name.rsplit("_", 1)[0].lower()
        factor, px = (_NM if kind in _TIMES_1E9 else 1.0), px_nm * _NM
        maps += [HeightMap(np.asarray(frame, dtype=np.float64) * factor, (px, px), channel=f"{name} [frame {k}]",
                           z_unit=_TIMES_1E9.get(kind, ""), source=path)
                 for k, frame in enumerate(np.asarray(stack))]
    return maps
