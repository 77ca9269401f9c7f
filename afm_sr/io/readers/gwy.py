"""Gwyddion native files (.gwy, GWYP) through gwyfile: every data field with its real size and units."""

from __future__ import annotations

import re
from pathlib import Path

import gwyfile
import numpy as np

from afm_sr.errors import AFMFileError
from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers._common import Hints, split_unit

_DATA_KEY = re.compile(r"^/(\d+)/data$")


def _unit(field: dict, key: str) -> str:
    """Return the unit string of a GwySIUnit component ('m' where the field has none, as Gwyddion assumes)."""
    unit = field.get(key)
    return (unit.get("unitstr") if unit is not None else None) or "m"


def read_channels(path: Path, hints: Hints) -> list[HeightMap]:
    """Each ``/N/data`` field in channel order, titled as Gwyddion shows it, heights in SI units."""
    with path.open("rb") as handle:
        if handle.read(4) == b"GWYO":
            raise AFMFileError(path, "this is an old Gwyddion 1.x file (GWYO), which gwyfile cannot read; "
                                     "open it in Gwyddion 2 and save it again as .gwy")
    container = gwyfile.load(str(path))
    maps = []
    ids = sorted(int(m.group(1)) for key in container if (m := _DATA_KEY.match(key)))
    for i in ids:
        field = container[f"/{i}/data"]
        title = str(container.get(f"/{i}/data/title", f"Channel {i}"))
        data = np.asarray(field.data)
        ny, nx = data.shape
        xy_factor, _ = split_unit(_unit(field, "si_unit_xy"))
        z_factor, z_base = split_unit(_unit(field, "si_unit_z"))
        pixel = (field["xreal"] * xy_factor / nx, field["yreal"] * xy_factor / ny)
        meta = {k.split("/", 3)[-1]: v for k, v in container.items() if k.startswith(f"/{i}/meta")}
        maps.append(HeightMap(data * z_factor, pixel, channel=title, z_unit=z_base, source=path,
                              metadata={"gwy_id": i, **_plain(meta)}))
    return maps


def _plain(meta: dict) -> dict[str, str]:
    """Flatten the ``/N/meta`` container (Gwyddion's metadata browser) as plain strings."""
    out: dict[str, str] = {}
    for value in meta.values():
        if hasattr(value, "items"):
            out.update({str(k): str(v) for k, v in value.items()})
    return out
