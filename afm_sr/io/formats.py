"""The table of file formats: which reader handles which suffix or leading bytes."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from afm_sr.errors import AFMFileError
from afm_sr.io.heightmap import HeightMap
from afm_sr.io.readers import afmreader, gsf, gwy, ibw, jpk, mdt, nanoscope, nanosurf, numpy_, sxm, text, tiff, wsxm
from afm_sr.io.readers._common import Hints

ReadFn = Callable[[Path, Hints], list[HeightMap]]


@dataclass(frozen=True)
class Format:
    """One readable format: its name, file suffixes, leading bytes (if it has any) and reader."""

    name: str
    suffixes: tuple[str, ...]
    read: ReadFn
    magic: tuple[bytes, ...] = ()
    library: str = "numpy"

    def matches_content(self, head: bytes) -> bool:
        """Whether ``head`` (the first bytes of a file) starts with one of this format's magics."""
        return any(head.startswith(m) for m in self.magic)


_HDF5 = (b"\x89HDF\r\n\x1a\n",)
_NANOSCOPE_SUFFIX = re.compile(r"\.\d{3}$")

#: Every format afm-sr reads, in the order content sniffing tries them (plain TIFF before JPK's TIFF).
FORMATS: tuple[Format, ...] = (
    Format("Igor binary wave (Asylum)", (".ibw",), ibw.read_channels, library="igor2"),
    Format("Gwyddion", (".gwy",), gwy.read_channels, (b"GWYP", b"GWYO"), "gwyfile"),
    Format("Gwyddion Simple Field", (".gsf",), gsf.read_channels, (gsf.MAGIC,)),
    Format("Nanonis SXM", (".sxm",), sxm.read_channels, (sxm.MAGIC,)),
    Format("Bruker NanoScope", (".spm",), nanoscope.read_channels, nanoscope.MAGIC, "pySPM"),
    Format("TIFF", (".tif", ".tiff"), tiff.read_channels, tiff.MAGIC, "tifffile"),
    Format("JPK", (".jpk", ".jpk-qi-image"), jpk.read_channels, tiff.MAGIC, "tifffile"),
    Format("JPK HDF5", (".h5-jpk",), afmreader.read_h5jpk, _HDF5, "AFMReader"),
    Format("WSxM", (".stp", ".top"), wsxm.read_channels, (wsxm.MAGIC,)),
    Format("Nanosurf NID", (".nid",), nanosurf.read_channels, (nanosurf.MAGIC,), "NSFopen"),
    Format("NT-MDT", (".mdt",), mdt.read_channels, (mdt.MAGIC,)),
    Format("NumPy", (".npy",), numpy_.read_npy, (b"\x93NUMPY",)),
    Format("NumPy archive", (".npz",), numpy_.read_npz, (b"PK\x03\x04",)),
    Format("text matrix", (".txt", ".asc", ".csv", ".dat", ".xyz"), text.read_channels),
)

_HEAD_BYTES = 64


def format_by_name(path: Path) -> Format | None:
    """Find the format whose suffix ends the file name (``.h5-jpk``, NanoScope ``.001``, ...), or None."""
    name = path.name.lower()
    for fmt in FORMATS:
        if any(name.endswith(s) for s in fmt.suffixes):
            return fmt
    if _NANOSCOPE_SUFFIX.search(name):
        return next(f for f in FORMATS if f.read is nanoscope.read_channels)
    return None


def detect(path: Path) -> Format:
    """Detect the format of ``path``: from its suffix checked against its leading bytes, else from content.

    Raises
    ------
    AFMFileError
        When neither the suffix nor the content names a known format, or when they disagree.
    """
    with path.open("rb") as handle:
        head = handle.read(_HEAD_BYTES)
    by_content = next((f for f in FORMATS if f.matches_content(head)), None)
    by_suffix = format_by_name(path)
    if by_suffix is None:
        if by_content is None:
            suffixes = ", ".join(s for f in FORMATS for s in f.suffixes)
            raise AFMFileError(path, f"unknown file format {path.suffix!r}; afm-sr reads {suffixes}, "
                                     "and NanoScope .001-.999")
        return by_content
    if by_suffix.magic and not by_suffix.matches_content(head):
        guess = f"; its content looks like {by_content.name}" if by_content else ""
        raise AFMFileError(path, f"the name says {by_suffix.name} but the content does not start like one"
                                 f"{guess}: wrong extension or a damaged file")
    return by_suffix
