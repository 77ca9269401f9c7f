"""Gwyddion native files (.gwy): Gwyddion 2 (``GWYP``) and Gwyddion 1.x (``GWYO``) containers.

Decoded here rather than by gwyfile (which afm-sr still uses to write .gwy): gwyfile reads only GWYP, trusts
every size and count in the file (a zero-length component makes it loop forever, a huge string-array count
loops for billions of items) and decodes every string as UTF-8, which Gwyddion 1.x files are not.

A serialized object is ``type name NUL, uint32 size, components``; a component is ``name NUL, type code,
payload`` (Gwyddion's file-format documentation). A GWYP file is one ``GwyContainer`` object whose components
are the keys (``/0/data``, ``/0/data/title``, ...). A GWYO file is ``GwyContainer NUL, uint32 size``, then
entries of ``uint32 GType, key NUL, value``; its data fields are serialized objects as in GWYP.

Like Gwyddion, field sizes and values are in base SI units and a prefix in a stored unit string ('µm' in the
GWYO sample) is not applied; a field without a title is 'Unknown channel <id + 1>'.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from afm_sr.errors import AFMFileError
from afm_sr.io.channels import UNTITLED
from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers._common import Hints, check_dims, scaled, split_unit

_DATA_KEY = re.compile(r"^/(\d+)/data$")
#: Struct formats of the fixed-size component types and NumPy types of the array types.
_FIXED = {"b": "<?", "c": "<B", "i": "<i", "q": "<q", "d": "<d"}
_ARRAY = {"C": "<u1", "I": "<i4", "Q": "<i8", "D": "<f8"}
#: GWYO entry types (GLib fundamental type ids) and their component type codes.
_GTYPES = {12: "c", 16: "c", 20: "b", 24: "i", 28: "i", 40: "q", 44: "q", 60: "d", 64: "s", 80: "o"}
_MAX_DEPTH = 32
_MIN_OBJECT = 6  # a name NUL and a uint32 size at least


@dataclass
class GwyObject:
    """A deserialized Gwyddion object: its type name and its components by name."""

    type: str
    fields: dict[str, object]


def _corrupt(path: Path, problem: str) -> AFMFileError:
    """The error for a container that contradicts itself or the file's size."""
    return AFMFileError(path, f"the Gwyddion container is damaged ({problem}); the file is truncated or corrupt")


def _string(path: Path, raw: bytes, pos: int, end: int) -> tuple[str, int]:
    """The NUL-terminated string at ``pos`` (UTF-8, else Latin-1 as Gwyddion 1.x wrote it) and the position after."""
    stop = raw.find(b"\0", pos, end)
    if stop < 0:
        raise _corrupt(path, "a string runs past the end of its object")
    text = raw[pos:stop]
    try:
        return text.decode("utf-8"), stop + 1
    except UnicodeDecodeError:
        return text.decode("latin-1"), stop + 1


def _object(path: Path, raw: bytes, pos: int, end: int, depth: int) -> tuple[GwyObject, int]:
    """The serialized object at ``raw[pos:end]`` and the position after it."""
    if depth > _MAX_DEPTH:
        raise _corrupt(path, f"objects nested more than {_MAX_DEPTH} deep")
    name, pos = _string(path, raw, pos, end)
    if pos + 4 > end:
        raise _corrupt(path, f"object {name!r} has no size")
    (size,) = struct.unpack_from("<I", raw, pos)
    start, stop = pos + 4, pos + 4 + size
    if stop > end:
        raise _corrupt(path, f"object {name!r} claims {size} bytes, more than its container holds")
    fields = {}
    while start < stop:
        key, start = _string(path, raw, start, stop)
        if start >= stop:
            raise _corrupt(path, f"component {key!r} has no type")
        fields[key], start = _value(path, raw, chr(raw[start]), start + 1, stop, depth)
    return GwyObject(name, fields), stop


def _value(path: Path, raw: bytes, code: str, pos: int, end: int, depth: int) -> tuple[object, int]:
    """The payload of type ``code`` at ``pos`` and the position after it, never reading past ``end``."""
    if code == "o":
        return _object(path, raw, pos, end, depth + 1)
    if code == "s":
        return _string(path, raw, pos, end)
    if code in _FIXED:
        size = struct.calcsize(_FIXED[code])
        if pos + size > end:
            raise _corrupt(path, "a component runs past the end of its object")
        return struct.unpack_from(_FIXED[code], raw, pos)[0], pos + size
    if code not in (*_ARRAY, "S", "O"):
        raise _corrupt(path, f"unknown component type {code!r}")
    if pos + 4 > end:
        raise _corrupt(path, "an array has no item count")
    (count,) = struct.unpack_from("<I", raw, pos)
    pos += 4
    if code in _ARRAY:
        dtype = np.dtype(_ARRAY[code])
        if pos + count * dtype.itemsize > end:
            raise _corrupt(path, f"an array announces {count} items, more than its object holds")
        return np.frombuffer(raw, dtype, count, pos), pos + count * dtype.itemsize
    if count * (1 if code == "S" else _MIN_OBJECT) > end - pos:
        raise _corrupt(path, f"an array announces {count} items, more than its object can hold")
    items = []
    for _ in range(count):
        item, pos = _string(path, raw, pos, end) if code == "S" else _object(path, raw, pos, end, depth + 1)
        items.append(item)
    return items, pos


def _gwyo_entries(path: Path, raw: bytes) -> dict[str, object]:
    """The keys and values of a Gwyddion 1.x container (``GWYO``)."""
    name, pos = _string(path, raw, 4, len(raw))
    if name != "GwyContainer" or pos + 4 > len(raw):
        raise _corrupt(path, f"the file holds {name!r}, not a GwyContainer")
    (size,) = struct.unpack_from("<I", raw, pos)
    pos, end = pos + 4, pos + 4 + size
    if end > len(raw):
        raise _corrupt(path, f"the container claims {size} bytes, more than the file holds")
    entries = {}
    while pos < end:
        if pos + 4 > end:
            raise _corrupt(path, "an entry has no type")
        (gtype,) = struct.unpack_from("<I", raw, pos)
        key, pos = _string(path, raw, pos + 4, end)
        if gtype not in _GTYPES:
            raise _corrupt(path, f"entry {key!r} has unknown type {gtype}")
        entries[key], pos = _value(path, raw, _GTYPES[gtype], pos, end, 0)
    return entries


def _container(path: Path) -> dict[str, object]:
    """The keys and values of the file's top-level container, GWYP or GWYO."""
    raw = path.read_bytes()
    if raw.startswith(b"GWYO"):
        return _gwyo_entries(path, raw)
    top, _ = _object(path, raw, 4, len(raw), 0)
    return top.fields


def _unit(field: GwyObject, key: str) -> str:
    """The base SI unit of a GwySIUnit component (its prefix dropped, as Gwyddion does); 'm' where absent."""
    unit = field.fields.get(key)
    text = unit.fields.get("unitstr") if isinstance(unit, GwyObject) else None
    return split_unit(text)[1] if isinstance(text, str) and text else "m"


def _heightmap(path: Path, container: dict[str, object], i: int) -> HeightMap:
    """The data field ``/i/data`` with its title, real size and units."""
    field = container[f"/{i}/data"]
    if not isinstance(field, GwyObject) or field.type != "GwyDataField":
        raise _corrupt(path, f"/{i}/data is not a GwyDataField")
    nx, ny = int(field.fields.get("xres", 0)), int(field.fields.get("yres", 0))  # type: ignore[call-overload]
    check_dims(path, ny, nx, what=f"data field {i}")
    data = field.fields.get("data")
    if not isinstance(data, np.ndarray) or data.size != nx * ny:
        raise _corrupt(path, f"data field {i} announces {nx}x{ny} px but holds a different number of values")
    pixel = (float(field.fields["xreal"]) / nx, float(field.fields["yreal"]) / ny)  # type: ignore[arg-type]
    title = container.get(f"/{i}/data/title")
    meta = container.get(f"/{i}/meta")
    return scaled(data.reshape(ny, nx), _unit(field, "si_unit_z"), pixel,
                  title if isinstance(title, str) else f"{UNTITLED} {i + 1}", path,
                  {**({k: str(v) for k, v in meta.fields.items()} if isinstance(meta, GwyObject) else {}), "gwy_id": i})


def read_channels(path: Path, hints: Hints) -> list[HeightMap]:
    """Each ``/N/data`` field in channel order, titled as Gwyddion shows it, heights in SI units."""
    container = _container(path)
    ids = sorted(int(m.group(1)) for key in container if (m := _DATA_KEY.match(key)))
    return [_heightmap(path, container, i) for i in ids]
