"""JPK (.jpk, .jpk-qi-image, .h5-jpk) and WSxM (.stp, .top) files through AFMReader (``afm-sr[formats]``).

AFMReader returns heights and pixel sizes in nanometres; they are converted to meters here.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from afm_sr.errors import AFMFileError
from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers._common import MAX_PIXELS, Hints, check_dims, optional_import, reserve_decoded
from afm_sr.io.readers.tiff import intact_tiff

_log = logging.getLogger(__name__)
_NM = 1e-9
#: JPK TIFF tags (JPKImageSpec 2.0) that name each page's channel and whether it is the retrace.
_JPK_CHANNEL_TAG, _JPK_RETRACE_TAG = 32848, 32849
#: JPK's slot-count tag: AFMReader builds a dict with that many entries, so a damaged value must be refused.
_JPK_SLOTS_TAG, _MAX_SLOTS = 32896, 64
#: The HDF5 attribute giving the side of each JPK high-speed frame (AFMReader allocates frames x side^2).
_H5_SIDE_ATTR = "position-pattern.grid.ilength"
_WSXM_HEAD_BYTES = 1 << 16
_WSXM_DIMS = (re.compile(rb"Number of rows: (\d+)"), re.compile(rb"Number of columns: (\d+)"))
#: JPK channels that AFMReader converts to nanometres; the others stay in their raw SI unit.
_JPK_NM_CHANNELS = ("height", "measuredheight", "amplitude")


def _module(name: str, fmt: str) -> ModuleType:
    """Import ``AFMReader.<name>`` and silence its loguru output (it enables itself on import)."""
    module = optional_import(f"AFMReader.{name}", fmt)
    optional_import("loguru", fmt).logger.disable("AFMReader")
    return module


def _heightmap(image: np.ndarray, px_nm: float, channel: str, path: Path, in_nm: bool = True) -> HeightMap:
    """Wrap an AFMReader image (nm or raw SI) and its square pixel size in nm."""
    data = np.asarray(image, dtype=np.float64)
    return HeightMap(data * _NM if in_nm else data, (px_nm * _NM, px_nm * _NM), channel=channel,
                     z_unit="m" if in_nm else "", source=path)


def _jpk_channels(path: Path) -> list[str]:
    """Channel names as AFMReader spells them (``height_trace``, ``measuredHeight_retrace``, ...)."""
    names = []
    with intact_tiff(path) as tif:
        for k, page in enumerate(tif.pages[1:], start=1):
            tags = page.tags
            check_dims(path, *(page.shape[:2] if len(page.shape) >= 2 else (0, 0)), what=f"TIFF page {k}")
            reserve_decoded(path, page.shape, page.dtype.itemsize, f"TIFF page {k}")
            if _JPK_SLOTS_TAG in tags and not 0 <= int(tags[_JPK_SLOTS_TAG].value) <= _MAX_SLOTS:
                raise AFMFileError(path, f"TIFF page {k} announces {tags[_JPK_SLOTS_TAG].value} calibration slots; "
                                         "the file is probably corrupt")
            if _JPK_CHANNEL_TAG in tags:
                direction = "retrace" if tags[_JPK_RETRACE_TAG].value else "trace"
                names.append(f"{tags[_JPK_CHANNEL_TAG].value}_{direction}")
    return list(dict.fromkeys(names))


def read_jpk(path: Path, hints: Hints) -> list[HeightMap]:
    """Every channel of a JPK TIFF-based image (.jpk, .jpk-qi-image)."""
    jpk = _module("jpk", "JPK")
    maps = []
    for name in _jpk_channels(path):
        image, px_nm = jpk.load_jpk(path, name)
        in_nm = name.rsplit("_", 1)[0].lower() in _JPK_NM_CHANNELS
        maps.append(_heightmap(image, px_nm, name, path, in_nm))
    return maps


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
    h5_jpk = _module("h5_jpk", "JPK HDF5")
    h5py = optional_import("h5py", "JPK HDF5")
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
        stack = np.asarray(stack)
        in_nm = name.rsplit("_", 1)[0] in _JPK_NM_CHANNELS
        maps += [_heightmap(frame, px_nm, f"{name} [frame {k}]", path, in_nm)
                 for k, frame in enumerate(stack)]
    return maps


def read_wsxm(path: Path, hints: Hints) -> list[HeightMap]:
    """Read the topography image of a WSxM .stp (float64) or .top (int16, scaled to 'Z Amplitude') file."""
    name = path.suffix.lower().lstrip(".")
    with path.open("rb") as handle:
        head = handle.read(_WSXM_HEAD_BYTES)
    dims = [int(m.group(1)) for pattern in _WSXM_DIMS if (m := pattern.search(head))]
    if len(dims) == 2:  # AFMReader reads rows x columns doubles one by one: refuse absurd counts first
        check_dims(path, *dims, what="WSxM header")
    loader = getattr(_module(name, "WSxM"), f"load_{name}")
    image, px_nm = loader(path)
    return [_heightmap(image, px_nm, "Topography", path)]
