"""Nanosurf .nid files through Nanosurf's own NSFopen.

A .nid file is an INI-like text header (``[DataSet]``, then one ``[DataSet-g:c]`` section per channel giving
``Points``, ``Lines``, ``SaveBits`` and the ``Dim0..2`` ranges and units), the mark ``#!``, then every channel's
integers back to back. NSFopen decodes the data; the header is checked here first because NSFopen trusts it:
it reads the *last* ``sum(Points * Lines * SaveBits / 8)`` bytes of the file (a cut or padded file would be
decoded shifted, silently) and loops over ``Gr<g>-Count`` slots (10^9 of them would hang it).

Orientation, checked on ``nanoscopeAFM__NanoSurf_20160301.nid`` (``Scan direction = Up``, Dynamic Force,
128x128, 10 um): NSFopen returns the lines in file order. Gwyddion's ezdfile.c fills its row ``i`` from stored
line ``Lines-1-i`` for every channel (it does not look at ``Scan direction``) and does not mirror backward
lines; the thumbnails Gwyddion 2.62 itself renders of the four channels (``gwyddion-thumbnailer -c K``, grey,
128 px) correlate 0.9999 with ``flipud`` of NSFopen's arrays and -0.05 with them unflipped. So every image
is flipped upside down here, as Gwyddion does: the first stored line goes to the bottom, where this
file's upward scan starts. For ``Scan direction = Down`` files we follow Gwyddion's source
(the same flip); no such file was at hand to check. Backward lines are stored left to right already: the
backward Z correlates 0.66 with the forward one as stored and -0.16 mirrored, so no column flip.

Channels are named like Gwyddion's titles: ``Z-Axis forward``, ``Amplitude backward``, ``Z-Axis 2nd
forward``; values are in SI units (NSFopen applies ``Dim2Min``/``Dim2Range``, the same
``(raw + 2^(bits-1)) / 2^bits * range + min`` as Gwyddion), heights in meters.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from afm_sr.errors import AFMFileError
from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers._common import (
    MAX_PIXELS,
    Hints,
    check_dims,
    lazy_import,
    need_bytes,
    scaled,
    to_meters,
)

MAGIC = b"[DataSet]"
_DATA_MARK = b"#!"
#: Real headers are ~10-100 kB; no ``#!`` within this many bytes means a damaged file.
_MAX_HEADER = 8 << 20
_HEADER_END = b"\n\r\n\r"
#: Bytes NSFopen's array of header lines may take (lines x longest line); real headers need ~0.2 MB.
_MAX_HEADER_CELLS = 16 << 20
#: NSFopen loops over ``GroupCount`` groups and ``Gr<g>-Count`` channel slots each: bound them.
_MAX_SLOTS = 4096
#: What NSFopen can decode: little-endian ('Intel') signed 16- or 32-bit integers, one width for all.
_BITS = (16, 32)
#: Image frames: NSFopen's key for each and the word Gwyddion appends to the channel name.
_FRAMES = {"Scan forward": ("Forward", "forward"), "Scan backward": ("Backward", "backward"),
           "2nd scan forward": ("2nd Forward", "2nd forward"), "2nd scan backward": ("2nd Backward", "2nd backward")}


def _header(path: Path) -> tuple[dict[str, dict[str, str]], int]:
    r"""Sections of the text header as NSFopen sees it (``{section: {key: value}}``), and where the data starts.

    NSFopen takes the header to end at the first ``\n\r\n\r`` (the blank lines before ``#!``) and turns its lines
    into a fixed-width NumPy array (lines x longest line): both are checked so that it can neither parse
    binary data as text nor allocate gigabytes for one absurd line.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(min(size, _MAX_HEADER))
    stop = head.find(_HEADER_END)
    end = head.find(_DATA_MARK, max(stop, 0))
    if stop < 0 or end < 0 or head[stop:end].strip():
        raise AFMFileError(path, "the text header does not end with blank lines and the '#!' mark: the file is "
                                 "truncated or damaged; copy it again from the instrument")
    lines = head[:stop].split(b"\r\n")
    longest = max(len(line) for line in lines)
    if longest * len(lines) > _MAX_HEADER_CELLS:
        raise AFMFileError(path, f"the header has a {longest}-byte line, which cannot be right; the file is "
                                 "probably corrupt")
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for number, raw_line in enumerate(lines, start=1):
        line = raw_line.decode("latin-1").strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections[line[1:-1]] = {}
        elif current is not None and "=" in line:
            key, value = line.split("=", 1)
            current[key] = value.strip()
        else:
            raise AFMFileError(path, f"header line {number} is neither '[section]' nor 'key=value' "
                                     f"({line!r:.40}): the file is damaged")
    return sections, end + len(_DATA_MARK)


def _int(path: Path, section: str, fields: dict[str, str], key: str) -> int:
    """The integer ``key`` of a header section, or AFMFileError saying which field is missing or damaged."""
    try:
        return int(fields[key])
    except (KeyError, ValueError):
        raise AFMFileError(path, f"the header's [{section}] section has no valid {key} "
                                 f"({fields.get(key, 'missing')!r:.40}); the file is damaged") from None


def _check_header(path: Path) -> tuple[list[dict[str, str]], dict[str, str]]:
    """Refuse, before NSFopen sees it, a header whose counts or sizes do not fit the file's bytes.

    Returns the channel sections in NSFopen's (and Gwyddion's) order, and the ``[DataSet-Info]`` section.
    """
    sections, start = _header(path)
    top = sections.get("DataSet")
    if top is None:
        raise AFMFileError(path, "the header has no [DataSet] section: not a Nanosurf .nid file, or a damaged one")
    groups = _int(path, "DataSet", top, "GroupCount")
    if not 0 < groups <= _MAX_SLOTS:
        raise AFMFileError(path, f"the header announces {groups} groups, which cannot be right; the file is "
                                 "probably corrupt")
    names = []
    for g in range(groups):
        slots = _int(path, "DataSet", top, f"Gr{g}-Count")
        if not 0 <= slots <= _MAX_SLOTS:
            raise AFMFileError(path, f"the header announces {slots} channels in group {g}, which cannot be "
                                     "right; the file is probably corrupt")
        names += [top[key] for c in range(slots) if (key := f"Gr{g}-Ch{c}") in top]
    if not names:
        raise AFMFileError(path, "the header lists no channel: the file holds no data")
    channels, needed, pixels, widths = [], 0, 0, set()
    for name in names:
        fields = sections.get(name)
        if fields is None:
            raise AFMFileError(path, f"the header lists channel [{name}] but has no such section; the file is "
                                     "damaged")
        points, lines = _int(path, name, fields, "Points"), _int(path, name, fields, "Lines")
        check_dims(path, lines, points, what=f"[{name}] section")
        bits = _int(path, name, fields, "SaveBits")
        storage = (fields.get("SaveMode", "Binary"), fields.get("SaveSign", "Signed"),
                   fields.get("SaveOrder", "Intel"))
        if bits not in _BITS or storage != ("Binary", "Signed", "Intel"):
            raise AFMFileError(path, f"channel [{name}] is stored as {' '.join(storage)} {bits}-bit; NSFopen "
                                     "reads only Binary Signed Intel 16- or 32-bit data")
        channels.append(fields)
        widths.add(bits)
        pixels += points * lines
        needed += points * lines * bits // 8
    if len(widths) > 1:
        raise AFMFileError(path, f"the channels mix {sorted(widths)}-bit data, which NSFopen cannot read")
    if pixels > MAX_PIXELS:
        raise AFMFileError(path, f"the header announces {pixels} values in all, which cannot be right; the file "
                                 "is probably corrupt")
    available = path.stat().st_size - start
    need_bytes(path, available, needed)
    if available > needed:
        raise AFMFileError(path, f"{available - needed} bytes follow the {needed} bytes of data its header "
                                 "announces: the file is damaged (NSFopen would read the data shifted)")
    return channels, sections.get("DataSet-Info", {})


def _length(fields: dict[str, str], dim: int) -> float:
    """Scan length along ``Dim<dim>`` in meters (``Dim0Range`` in ``Dim0Unit``)."""
    return to_meters(float(fields[f"Dim{dim}Range"]), fields.get(f"Dim{dim}Unit", "m"))


def read_channels(path: Path, hints: Hints) -> list[HeightMap]:
    """Every image channel (forward, backward, 2nd scans), row 0 at the top as Gwyddion shows it, SI units."""
    nsf = lazy_import("NSFopen.read", "Nanosurf NID")
    channels, info = _check_header(path)
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        nid = nsf.nid_read(filename=str(path), dataframe=False, verbose=False)
    images = (nid.data or {}).get("Image", {})
    metadata = {k: v for k, v in info.items() if not k.startswith("--")}
    maps, seen = [], set()
    for fields in channels:
        frame, name = fields.get("Frame", ""), fields.get("Dim2Name", "")
        key = name + "2" if (frame, name) in seen else name  # NSFopen's names for a repeated channel
        seen.add((frame, name))
        if frame not in _FRAMES:  # spectroscopy and sweeps: not images
            continue
        group, direction = _FRAMES[frame]
        image = images.get(group, {}).get(key)
        if image is None:
            raise AFMFileError(path, f"NSFopen returned no data for channel {name!r} of {frame!r}; the header "
                                     "is probably damaged")
        data = np.asarray(image, dtype=np.float64)
        lines, points = int(fields["Lines"]), int(fields["Points"])
        if data.shape != (lines, points):
            raise AFMFileError(path, f"channel {name!r} of {frame!r} came back as {data.shape}, not {lines}x"
                                     f"{points} px; the file is damaged")
        width, height = _length(fields, 0), _length(fields, 1)
        if not (np.isfinite(width) and np.isfinite(height) and width > 0 and height > 0):
            raise AFMFileError(path, f"channel {name!r} of {frame!r} has a scan size of {width:g} x {height:g} m; "
                                     "the header is damaged")
        maps.append(scaled(np.flipud(data), fields.get("Dim2Unit", ""), (width / points, height / lines),
                           f"{key} {direction}", path, metadata))
    return maps
