"""JPK images (.jpk, .jpk-qi-image): TIFF pages with JPK's private tags (JPKImageSpec 2.0), read through tifffile.

Read as Gwyddion's jpkscan module does; AFMReader 0.0.7 (used before) looks channels up by name, so where two
pages share one (the two 'Height (measured)' pages of a QI image) it silently loads the last, and it guesses
which channels are in nm from a fixed list instead of the unit the file gives.

- Page 0 is a thumbnail; it carries the scan size (``Grid-uLength``/``vLength``, m).
- Every other page is a channel: its name is tag 32850 plus ' (retrace)' for retrace pages, like Gwyddion's.
- Values: raw integers x multiplier + offset of the page's default calibration slot (tag 32897), in that
  slot's unit. The file stores each slot's multiplier and offset relative to the raw data (not chained).
- Rows: stored bottom-up; flipped so row 0 is the top, as Gwyddion shows it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from afm_sr.errors import AFMFileError
from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers._common import Hints, check_dims, reserve_decoded, split_unit
from afm_sr.io.readers.tiff import intact_tiff

#: Thumbnail-page tags: scan size (m) along the fast and the slow axis.
_ULENGTH, _VLENGTH = 32834, 32835
#: Channel-page tags: AFMReader-style name, retrace flag, the name Gwyddion and JPK show, slot count, default slot.
_CHANNEL, _RETRACE, _FANCY_NAME, _N_SLOTS, _DEFAULT_SLOT = 32848, 32849, 32850, 32896, 32897
#: Slot k's tags start at 32912 + 48 k: its name (+0), unit (+18), scaling type (+19), multiplier (+20), offset (+21).
_FIRST_SLOT, _SLOT_SIZE, _UNIT, _SCALING, _MULTIPLIER, _OFFSET = 32912, 48, 18, 19, 20, 21
_MAX_SLOTS = 64


def _tag(path: Path, page: tifffile.TiffPage, code: int, what: str) -> object:
    """The value of tag ``code`` of ``page``, or AFMFileError naming what is missing."""
    if code not in page.tags:
        raise AFMFileError(path, f"TIFF page {page.index} has no JPK {what} tag ({code}); the file is damaged")
    return page.tags[code].value


def _calibration(path: Path, page: tifffile.TiffPage) -> tuple[float, float, str]:
    """Multiplier, offset and unit of the page's default calibration slot."""
    n_slots = int(_tag(path, page, _N_SLOTS, "slot count"))  # type: ignore[call-overload]
    if not 0 < n_slots <= _MAX_SLOTS:
        raise AFMFileError(path, f"TIFF page {page.index} announces {n_slots} calibration slots; the file is "
                                 "probably corrupt")
    default = _tag(path, page, _DEFAULT_SLOT, "default slot")
    for k in range(n_slots):
        base = _FIRST_SLOT + _SLOT_SIZE * k
        if page.tags.get(base) is None or page.tags[base].value != default:
            continue
        scaling = page.tags[base + _SCALING].value if base + _SCALING in page.tags else "NullScaling"
        unit = str(page.tags[base + _UNIT].value) if base + _UNIT in page.tags else ""
        if scaling == "NullScaling":
            return 1.0, 0.0, unit
        if scaling != "LinearScaling":
            raise AFMFileError(path, f"TIFF page {page.index} uses JPK scaling {scaling!r}, which afm-sr does "
                                     "not know (only LinearScaling and NullScaling)")
        return (float(_tag(path, page, base + _MULTIPLIER, "multiplier")),  # type: ignore[arg-type]
                float(_tag(path, page, base + _OFFSET, "offset")), unit)  # type: ignore[arg-type]
    raise AFMFileError(path, f"TIFF page {page.index} names default slot {default!r} but has no such slot")


def numbered(names: list[str]) -> list[str]:
    """``names`` with repeats made unique by ' [2]', ' [3]', ... so ``--channel`` can pick each one."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} [{seen[name]}]")
    return out


def read_channels(path: Path, hints: Hints) -> list[HeightMap]:
    """Every channel page, named and scaled as Gwyddion shows it."""
    with intact_tiff(path) as tif:
        thumb = tif.pages[0]
        width = float(_tag(path, thumb, _ULENGTH, "scan width"))  # type: ignore[arg-type]
        height = float(_tag(path, thumb, _VLENGTH, "scan height"))  # type: ignore[arg-type]
        pages = [page for page in tif.pages[1:] if _CHANNEL in page.tags and len(page.shape) == 2]
        names = numbered([_name(page) for page in pages])
        return [_heightmap(path, page, name, (width, height)) for page, name in zip(pages, names, strict=True)]


def _name(page: tifffile.TiffPage) -> str:
    """The channel name Gwyddion shows: tag 32850 (else 32848), plus ' (retrace)' for a retrace page."""
    fancy = str(page.tags[_FANCY_NAME].value if _FANCY_NAME in page.tags else page.tags[_CHANNEL].value)
    return f"{fancy} (retrace)" if _RETRACE in page.tags and page.tags[_RETRACE].value else fancy


def _heightmap(path: Path, page: tifffile.TiffPage, name: str, scan_size: tuple[float, float]) -> HeightMap:
    """One channel page: raw values through its default calibration, rows flipped to top-first."""
    ny, nx = page.shape
    check_dims(path, ny, nx, what=f"TIFF page {page.index}")
    reserve_decoded(path, page.shape, page.dtype.itemsize, f"TIFF page {page.index}")
    multiplier, offset, unit = _calibration(path, page)
    factor, base = split_unit(unit)
    data = (page.asarray().astype(np.float64) * multiplier + offset)[::-1] * factor
    return HeightMap(data, (scan_size[0] / nx, scan_size[1] / ny), channel=name, z_unit=base, source=path,
                     metadata={"jpk_channel": str(page.tags[_CHANNEL].value)})
