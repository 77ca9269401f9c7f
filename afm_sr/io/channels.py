"""Choosing a channel: the height/topography channel by default, trace over retrace, or the one asked for."""

from __future__ import annotations

import re
from pathlib import Path

from afm_sr.errors import AFMFileError
from afm_sr.io.heightmap import HeightMap

#: Height-like channel names by preference (after lower-casing and dropping non-letters/digits).
_HEIGHT_WORDS = ("height", "topography", "topo", "z")
#: How readers name a field the file gives no title (Gwyddion's words); a file's only one, in meters, is a height.
UNTITLED = "Unknown channel"


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


def find_height(maps: list[HeightMap]) -> HeightMap | None:
    """The height map: the best height-named channel in meters, else a file's only channel if untitled, in meters."""
    ranked = [(rank, i) for i, hm in enumerate(maps) if (rank := _height_rank(hm)) is not None]
    if ranked:
        return maps[min(ranked)[1]]
    if len(maps) == 1 and maps[0].z_unit == "m" and maps[0].channel.startswith(UNTITLED):  # an old .gwy, say
        return maps[0]
    return None


def listing(maps: list[HeightMap]) -> str:
    """``'Phase' (deg), 'Height' (m)``: the channels of a file with their units, for error messages."""
    return ", ".join(f"{hm.channel!r} ({hm.z_unit or 'no unit'})" for hm in maps)


def pick(maps: list[HeightMap], channel: str | None, path: Path) -> HeightMap:
    """Return the map named ``channel`` (exact, then ignoring case/punctuation), else the height map."""
    if channel is not None:
        for same in (lambda hm: hm.channel == channel, lambda hm: _key(hm.channel) == _key(channel)):
            found = [hm for hm in maps if same(hm)]
            if found:
                return found[0]
        raise AFMFileError(path, f"no channel {channel!r}; the file holds {listing(maps)}")
    height = find_height(maps)
    if height is None:
        raise AFMFileError(path, f"no height channel among {listing(maps)}; pass channel=... (CLI: --channel) "
                                 "to read one of them anyway")
    return height
