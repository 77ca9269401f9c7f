"""JPK (.jpk, .jpk-qi-image, .h5-jpk) and WSxM (.stp, .top) files through AFMReader (``afm-sr[formats]``).

AFMReader returns heights and pixel sizes in nanometres; they are converted to meters here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import ModuleType

import numpy as np

from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers._common import Hints, optional_import

_log = logging.getLogger(__name__)
_NM = 1e-9
#: JPK TIFF tags (JPKImageSpec 2.0) that name each page's channel and whether it is the retrace.
_JPK_CHANNEL_TAG, _JPK_RETRACE_TAG = 32848, 32849
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
    import tifffile

    names = []
    with tifffile.TiffFile(path) as tif:
        for page in tif.pages[1:]:
            tags = page.tags
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


def read_h5jpk(path: Path, hints: Hints) -> list[HeightMap]:
    """Every frame of every channel of a JPK high-speed HDF5 file, named ``<channel> [frame k]``."""
    h5_jpk = _module("h5_jpk", "JPK HDF5")
    h5py = optional_import("h5py", "JPK HDF5")
    with h5py.File(path, "r") as handle:
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
    loader = getattr(_module(name, "WSxM"), f"load_{name}")
    image, px_nm = loader(path)
    return [_heightmap(image, px_nm, "Topography", path)]
