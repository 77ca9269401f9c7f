"""Gwyddion native files (.gwy, GWYP) through gwyfile: every data field with its real size and units."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import gwyfile
import numpy as np

from afm_sr.errors import AFMFileError
from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers._common import Hints, split_unit

_DATA_KEY = re.compile(r"^/(\d+)/data$")
#: Payload bytes of the fixed-size component types and item sizes of the array types (Gwyddion file format).
_FIXED = {"b": 1, "c": 1, "i": 4, "q": 8, "d": 8}
_ARRAY = {"C": 1, "I": 4, "Q": 8, "D": 8}
_MAX_DEPTH = 32
_MIN_OBJECT = 6  # a name NUL and a uint32 size at least


def _corrupt(path: Path, problem: str) -> AFMFileError:
    return AFMFileError(path, f"the Gwyddion container is damaged ({problem}); the file is truncated or corrupt")


def _check_object(path: Path, raw: bytes, pos: int, end: int, depth: int) -> int:
    """Check the serialized object at ``raw[pos:end]`` and return the position after it.

    gwyfile trusts every size and count in the file: a zero-length component makes it loop forever and a huge
    string-array count makes it loop for billions of items, so the container is walked here first, in bounds.
    """
    if depth > _MAX_DEPTH:
        raise _corrupt(path, f"objects nested more than {_MAX_DEPTH} deep")
    name_end = raw.find(b"\0", pos, end)
    if name_end < 0 or name_end + 5 > end:
        raise _corrupt(path, f"an object at byte {pos} has no name or size")
    (size,) = struct.unpack_from("<I", raw, name_end + 1)
    start, stop = name_end + 5, name_end + 5 + size
    if stop > end:
        raise _corrupt(path, f"an object at byte {pos} claims {size} bytes, more than its container holds")
    while start < stop:
        start = _check_component(path, raw, start, stop, depth)
    return stop


def _check_component(path: Path, raw: bytes, pos: int, end: int, depth: int) -> int:
    """Check one ``name NUL typecode payload`` component inside ``raw[pos:end]``; return the position after it."""
    name_end = raw.find(b"\0", pos, end)
    if name_end < 0 or name_end + 2 > end:
        raise _corrupt(path, f"a component at byte {pos} has no name or type")
    code, pos = chr(raw[name_end + 1]), name_end + 2
    if code == "o":
        return _check_object(path, raw, pos, end, depth + 1)
    if code == "s":
        pos = raw.find(b"\0", pos, end) + 1
        if pos == 0:
            raise _corrupt(path, "a string runs past the end of its object")
        return pos
    if code in _FIXED:
        pos += _FIXED[code]
    elif code in (*_ARRAY, "S", "O"):
        if pos + 4 > end:
            raise _corrupt(path, "an array has no item count")
        (count,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if code in _ARRAY:
            pos += count * _ARRAY[code]
        elif count * (1 if code == "S" else _MIN_OBJECT) > end - pos:
            raise _corrupt(path, f"an array announces {count} items, more than its object can hold")
        else:
            for _ in range(count):
                pos = raw.find(b"\0", pos, end) + 1 if code == "S" else _check_object(path, raw, pos, end, depth + 1)
                if pos == 0:
                    raise _corrupt(path, "a string runs past the end of its object")
    else:
        raise _corrupt(path, f"unknown component type {code!r}")
    if pos > end:
        raise _corrupt(path, "a component runs past the end of its object")
    return pos


def _unit(field: dict, key: str) -> str:
    """Return the unit string of a GwySIUnit component ('m' where the field has none, as Gwyddion assumes)."""
    unit = field.get(key)
    return (unit.get("unitstr") if unit is not None else None) or "m"


def read_channels(path: Path, hints: Hints) -> list[HeightMap]:
    """Each ``/N/data`` field in channel order, titled as Gwyddion shows it, heights in SI units."""
    raw = path.read_bytes()
    if raw.startswith(b"GWYO"):
        raise AFMFileError(path, "this is an old Gwyddion 1.x file (GWYO), which gwyfile cannot read; "
                                 "open it in Gwyddion 2 and save it again as .gwy")
    _check_object(path, raw, 4, len(raw), 0)
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
