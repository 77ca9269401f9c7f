"""Gwyddion's plug-in dump format (``modules/plugin-proxy.c``): read the channel Gwyddion hands over, write one back.

A field ``NAME`` (``/0/data``, ``/0/mask``) is six ``NAME/KEY=VALUE`` lines (xres, yres, xreal, yreal, unit-xy,
unit-z), then ``NAME=[``, a line break, ``[``, xres * yres float64 little-endian values row by row and ``]]``.
Gwyddion reads the keys before each block, so all six precede it (a missing xreal would become 1 m).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from afm_sr.atomic import write_atomically
from afm_sr.errors import AFMFileError

DATA, MASK = "/0/data", "/0/mask"
_KEYS = ("xres", "yres", "xreal", "yreal", "unit-xy", "unit-z")


@dataclass
class Field:
    """One GwyDataField as the dump carries it: values (yres, xres), physical size in ``unit_xy``, units."""

    data: np.ndarray
    xreal: float
    yreal: float
    unit_xy: str
    unit_z: str

    def lines(self, name: str) -> bytes:
        """The field as dump bytes under ``name``: the six keys, then the data block."""
        yres, xres = self.data.shape
        values = {"xres": xres, "yres": yres, "xreal": repr(float(self.xreal)), "yreal": repr(float(self.yreal)),
                  "unit-xy": self.unit_xy, "unit-z": self.unit_z}
        head = "".join(f"{name}/{key}={values[key]}\n" for key in _KEYS) + f"{name}=[\n["
        return head.encode() + np.ascontiguousarray(self.data, dtype="<f8").tobytes() + b"]]\n"


def parse(buffer: bytes, source: Path | str = "the dump") -> dict[str, Field]:
    """The fields in a dump (``{"/0/data": Field, ...}``); AFMFileError naming ``source`` where it is malformed."""
    keys: dict[str, str] = {}
    fields: dict[str, Field] = {}
    pos = 0
    while pos < len(buffer):
        end = buffer.find(b"\n", pos)
        end = len(buffer) if end < 0 else end
        line = buffer[pos:end].decode("utf-8", "replace")
        pos = end + 1
        if line.endswith("=[") and buffer[pos:pos + 1] == b"[":
            name = line[:-2]
            field, pos = _block(buffer, pos + 1, name, keys, source)
            fields[name] = field
        elif "=" in line:
            key, value = line.split("=", 1)
            keys[key] = value
    if DATA not in fields:
        raise AFMFileError(source, f"holds no {DATA} block: not a Gwyddion plug-in dump")
    return fields


def _block(buffer: bytes, pos: int, name: str, keys: dict[str, str], source: Path | str) -> tuple[Field, int]:
    """The field ``name`` whose values start at ``pos``, and the position after its closing ``]]``."""
    try:
        xres, yres = int(keys[f"{name}/xres"]), int(keys[f"{name}/yres"])
        xreal, yreal = float(keys[f"{name}/xreal"]), float(keys[f"{name}/yreal"])
    except (KeyError, ValueError) as exc:
        raise AFMFileError(source, f"{name} lacks a valid {exc}: not a Gwyddion plug-in dump") from None
    end = pos + 8 * xres * yres
    if xres < 1 or yres < 1 or buffer[end:end + 2] != b"]]":
        raise AFMFileError(source, f"{name} does not hold {xres}x{yres} values: the dump is cut short or damaged")
    data = np.frombuffer(buffer, dtype="<f8", count=xres * yres, offset=pos).reshape(yres, xres).astype(np.float64)
    field = Field(data, xreal, yreal, keys.get(f"{name}/unit-xy", "m"), keys.get(f"{name}/unit-z", ""))
    return field, end + 2 + (buffer[end + 2:end + 3] == b"\n")


def read(path: Path) -> dict[str, Field]:
    """The fields of the dump file Gwyddion wrote."""
    try:
        buffer = path.read_bytes()
    except OSError as exc:
        raise AFMFileError(path, f"cannot read Gwyddion's dump ({exc.strerror or exc})") from exc
    return parse(buffer, path)


def write(path: Path, content: bytes) -> None:
    """Replace the dump file with ``content`` atomically (Gwyddion reads it back once the plug-in exits)."""
    write_atomically({path: lambda tmp: tmp.write_bytes(content)}, overwrite=True)


def refusal(lines: list[str]) -> bytes:
    """A dump Gwyddion rejects after logging each of ``lines``: the only way a plug-in's words reach its messages.

    Gwyddion logs every line that is not a ``/KEY=VALUE`` pair as ``Garbage key: LINE`` and then, since the
    ``/0/data`` block lacks its size, ``Cannot run plug-in ...: it returned garbage.``; it adds no channel. It parses
    the dump only after an exit code of 0, so the plug-in exits 0 after writing this. An empty line would end its
    parsing early (it would then add a copy of the channel), so none is written.
    """
    text = "".join(f"{line}\n" for line in lines if line.strip() and not line.startswith("/"))
    return f"{text}{DATA}=[\n[]]\n".encode()
