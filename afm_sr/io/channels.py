"""Choosing a channel: the height/topography channel by default, trace over retrace, or the one asked for."""

from __future__ import annotations

import re
from pathlib import Path

from afm_sr.errors import AFMFileError
from afm_sr.io.heightmap import HeightMap

#: Height-like channel names by preference (after lower-casing and dropping non-letters/digits).
_HEIGHT_WORDS = ("height", "topography", "topo", "z")


def _key(name: str) -> str:
    """``'Z (Forward)'`` -> ``'zforward'``: the form names are compared in."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _height_rank(hm: HeightMap) -> tuple[int, int] | None:
    """Sort key of a height channel (kind of name, then trace before retrace), ``None`` if not one."""
    key = _key(hm.channel)
    if hm.z_unit != "m":
        return None
    kind = next((i for i, word in enumerate(_HEIGHT_WORDS) if key.startswith(word) or
                 (word != "z" and word in key)), None)
    if kind is None:
        return None
    backward = "retrace" in key or "backward" in key
    return (kind, int(backward))


def pick(maps: list[HeightMap], channel: str | None, path: Path) -> HeightMap:
    """Return the map named ``channel`` (exact, then ignoring case/punctuation), else the height map."""
    names = [hm.channel for hm in maps]
    if channel is not None:
        for same in (lambda hm: hm.channel == channel, lambda hm: _key(hm.channel) == _key(channel)):
            found = [hm for hm in maps if same(hm)]
            if found:
                return found[0]
        raise AFMFileError(path, f"no channel {channel!r}; the file holds {names}")
    ranked = [(rank, i) for i, hm in enumerate(maps) if (rank := _height_rank(hm)) is not None]
    if not ranked:
        raise AFMFileError(path, f"no height channel among {names}; pass channel=... (CLI: --channel) "
                                 "to read one of them anyway")
    return maps[min(ranked)[1]]
