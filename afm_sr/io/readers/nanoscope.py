"""Bruker / Veeco NanoScope files (.spm, .000-.999) through pySPM."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from afm_sr.errors import AFMFileError
from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers._common import Hints, lazy_import, scaled, to_meters

MAGIC = (b"\\*File list", b"?*File list")
_NAME = re.compile(r'"([^"]+)"')
_HEADER_END = b"*File list end"


def _check_header_end(path: Path) -> None:
    """Refuse a header without its ``*File list end`` line: pySPM would read past the end forever."""
    with path.open("rb") as handle:
        if not any(line.rstrip().replace(b"\\", b"") == _HEADER_END for line in handle):
            raise AFMFileError(path, "the NanoScope header has no '\\*File list end' line: the file is truncated "
                                     "or damaged; copy it again from the instrument")


def _name(layer: dict) -> str:
    """Return the channel name in ``@2:Image Data: S [Height] "Height"``."""
    label = layer[b"@2:Image Data"][0].decode("latin-1")
    match = _NAME.search(label)
    return match.group(1) if match else label


def read_channels(path: Path, hints: Hints) -> list[HeightMap]:
    """Each image layer, row 0 at the top as NanoScope and Gwyddion show it, heights in meters."""
    pyspm = lazy_import("pySPM", "Bruker NanoScope")
    _check_header_end(path)
    scan = pyspm.Bruker(str(path))
    maps = []
    for layer in scan.layers:
        name = _name(layer)
        image = scan.get_channel(name)
        size = image.size
        width = to_meters(size["real"]["x"], size["real"]["unit"])
        height = to_meters(size["real"]["y"], size["real"]["unit"])
        ny, nx = image.pixels.shape
        # a phase sensitivity without a unit ('@Sens. Phase: V 1.000000') leaves pySPM's bare V: degrees, as Gwyddion
        unit = "deg" if name.lower().startswith("phase") and image.zscale == "V" else image.zscale
        maps.append(scaled(np.flipud(np.asarray(image.pixels, dtype=np.float64)), unit,
                           (width / nx, height / ny), name, path,
                           {"scan_size": f"{size['real']['x']} {size['real']['unit']}"}))
    return maps
