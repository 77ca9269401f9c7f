"""Nanonis scan files (.sxm): a tagged text header, then big-endian float32 images per channel/direction.

Hand-written: nanonispy, the field's reader, calls ``np.float``, which NumPy removed in 1.24, so it
cannot run with this project's NumPy; the layout below follows Nanonis' "SXM file format" document.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers._common import Hints, check_dims, need_bytes, scaled

MAGIC = b":NANONIS_VERSION:"
_END = b":SCANIT_END:"


def _header(text: str) -> dict[str, list[str]]:
    """``:TAG:`` blocks of the header, each as its list of non-empty lines."""
    tags: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith(":") and line.endswith(":") and len(line) > 2:
            current = line.strip(":")
            tags[current] = []
        elif current is not None and line.strip():
            tags[current].append(line)
    return tags


def read_channels(path: Path, hints: Hints) -> list[HeightMap]:
    """Each channel in each recorded direction (``Z (Forward)``, ``Z (Backward)``, ...), row 0 at the top."""
    raw = path.read_bytes()
    if not raw.startswith(MAGIC):
        raise ValueError("the file does not start with ':NANONIS_VERSION:'")
    end = raw.index(_END)
    tags = _header(raw[:end].decode("latin-1"))
    nx, ny = (int(v) for v in tags["SCAN_PIXELS"][0].split())
    check_dims(path, ny, nx)
    width, height = (float(v) for v in tags["SCAN_RANGE"][0].split())
    upward = bool(tags.get("SCAN_DIR")) and tags["SCAN_DIR"][0].strip() == "up"
    columns = tags["DATA_INFO"][0].split("\t")[1:]
    channels = [dict(zip(columns, row.split("\t")[1:], strict=False)) for row in tags["DATA_INFO"][1:]]
    start = raw.index(b"\x1a\x04", end) + 2
    images = [(ch, d) for ch in channels
              for d in (("Forward", "Backward") if ch["Direction"] == "both" else (ch["Direction"].title(),))]
    need_bytes(path, len(raw) - start, 4 * nx * ny * len(images))
    meta = {k: " ".join(v).strip() for k, v in tags.items() if k != "DATA_INFO"}
    maps = []
    for k, (ch, direction) in enumerate(images):
        frame = np.frombuffer(raw, dtype=">f4", count=nx * ny, offset=start + 4 * nx * ny * k)
        frame = frame.reshape(ny, nx)
        if upward:  # the first line recorded is the bottom one
            frame = frame[::-1]
        if direction == "Backward":  # backward lines are stored right to left
            frame = frame[:, ::-1]
        maps.append(scaled(frame, ch["Unit"], (width / nx, height / ny), f"{ch['Name']} ({direction})", path, meta))
    return maps
