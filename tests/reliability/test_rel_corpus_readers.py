"""Bad-input corpus for ``afm_sr.io``: every hostile file gives one AFMFileError naming the file and the problem.

Files are made in tmp_path from the real samples (truncated, mislabelled, with absurd header fields) and from
scratch; headers announcing ~10^9 pixels must be refused before anything that size is allocated.
"""

from __future__ import annotations

import io
import os
import re
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from rel_support import (
    ALLOCATION_LIMIT,
    SAMPLE_PER_FORMAT,
    Refusal,
    refusal,
    sample,
    scratch_file,
    surface,
    write_npy,
)

from afm_sr.errors import AFMFileError
from afm_sr.io import HeightMap, list_channels, read, write

GIANT = 31623  # 31623^2 ~ 10^9 pixels
#: Byte offsets in the NT-MDT sample: frame 2 (its MDA image), its array record's cell count, the x calibration's
#: max index; each calibration is 124 bytes, the y one and then the measurand (whose data type sits 8 bytes on).
MDT_FRAME_2, MDT_CELLS, MDT_X_MAX, MDT_CALIBRATION = 0x2E1, 0xAFE0, 0xB045, 124
Builder = Callable[[Path], Path]


def _copy(name: str, tmp: Path, suffix: str | None = None, edit: Callable[[bytes], bytes] = bytes) -> Path:
    """A copy of sample ``name`` in ``tmp`` (renamed to ``suffix`` and passed through ``edit``)."""
    src = sample(name)
    dest = tmp / (src.stem + (suffix or src.name[len(src.stem):]))
    dest.write_bytes(edit(src.read_bytes()))
    return dest


def _truncated(fmt: str, fraction: float) -> Builder:
    """The format's sample cut after ``fraction`` of its bytes."""
    return lambda tmp: _copy(SAMPLE_PER_FORMAT[fmt], tmp, edit=lambda raw: raw[: int(len(raw) * fraction)])


def _packed(offset: int, fmt: str, *values: int) -> Callable[[bytes], bytes]:
    """An edit that overwrites the header field at ``offset`` with ``values`` packed as ``fmt``."""
    def edit(raw: bytes) -> bytes:
        out = bytearray(raw)
        struct.pack_into(fmt, out, offset, *values)
        return bytes(out)
    return edit


def _gwy_giant(raw: bytes) -> bytes:
    """Every ``xres``/``yres`` int32 field of a GWYP container set to GIANT."""
    out = bytearray(raw)
    for match in re.finditer(rb"[xy]res\0i", raw):
        struct.pack_into("<i", out, match.end(), GIANT)
    return bytes(out)


def _gwy_object(name: bytes, components: bytes) -> bytes:
    """A serialized Gwyddion object: name, NUL, uint32 size, components."""
    return name + b"\0" + struct.pack("<I", len(components)) + components


def _npz_giant(tmp: Path) -> Path:
    """An .npz whose Height member's header announces GIANT x GIANT float64 (8 GB) over 128 bytes of data."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (GIANT, GIANT)})
    path = tmp / "giant.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("Height.npy", header.getvalue() + bytes(128))
    return path


def _tiff_giant(tmp: Path) -> Path:
    """A one-strip float32 TIFF whose width and length tags say GIANT."""
    path = tmp / "giant.tiff"
    entries = [(256, 4, GIANT), (257, 4, GIANT), (258, 3, 32), (259, 3, 1), (262, 3, 1), (273, 4, 8),
               (277, 3, 1), (278, 4, GIANT), (279, 4, 16), (339, 3, 3)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", tag, kind, 1, value)
                                                     for tag, kind, value in entries) + struct.pack("<I", 0)
    path.write_bytes(b"II*\0" + struct.pack("<I", 24) + bytes(16) + ifd)
    return path


def _npz_phase_only(tmp: Path) -> Path:
    path = tmp / "phase.npz"
    np.savez(path, Phase=surface(), pixel_size_m=np.array([1e-8, 1e-8]))
    return path



def _npy(name: str, array: np.ndarray) -> Builder:
    return lambda tmp: write_npy(tmp / name, array)


def _nan_image() -> np.ndarray:
    image = surface()
    image[3, 5] = np.nan
    image[10, 10] = np.inf
    return image


def _directory(tmp: Path) -> Path:
    (tmp / "scans.ibw").mkdir()
    return tmp / "scans.ibw"


def _nid_edit(old: bytes, new: bytes, count: int = -1) -> Builder:
    """The Nanosurf sample with header text ``old`` replaced by ``new``."""
    return lambda tmp: _copy(SAMPLE_PER_FORMAT["nid"], tmp, edit=lambda raw: raw.replace(old, new, count))


#: (id, builder, pattern the error message must match). Truncations: 3 offsets x 14 formats.
REFUSED: list[tuple[str, Builder, str]] = [
    *[(f"truncated-{fmt}-{int(frac * 100)}%", _truncated(fmt, frac),
       r"truncated|could not read|damaged|empty|not an Igor|shorter|inconsistent|does not start")
      for fmt in SAMPLE_PER_FORMAT for frac in (0.001, 0.3, 0.7)],
    ("empty-ibw", scratch_file("empty.ibw", b""), "the file is empty"),
    ("empty-gwy", scratch_file("empty.gwy", b""), "the file is empty"),
    ("missing", lambda tmp: tmp / "absent.ibw", "no such file"),
    ("directory", _directory, "is a directory"),
    ("unknown-suffix", scratch_file("scan.xyzzy", b"just some notes\n"), r"unknown file format '\.xyzzy'"),
    ("sxm-as-gsf", lambda tmp: _copy("SpmImages.jl__01514.sxm", tmp, ".gsf"),
     "the name says Gwyddion Simple Field .* looks like Nanonis SXM"),
    ("tiff-as-gwy", lambda tmp: _copy(SAMPLE_PER_FORMAT["tiff"], tmp, ".gwy"), "the name says Gwyddion"),
    ("gwy-as-sxm", lambda tmp: _copy(SAMPLE_PER_FORMAT["gwy"], tmp, ".sxm"), "the name says Nanonis SXM"),
    ("text-as-spm", scratch_file("notes.spm", b"just some notes\n"), "the name says Bruker NanoScope"),
    ("text-as-nid", scratch_file("notes.nid", b"just some notes\n"), "the name says Nanosurf NID"),
    ("random-as-ibw", scratch_file("noise.ibw", bytes(range(7, 256)) * 4), "not an Igor binary wave"),
    ("random-as-npy", scratch_file("noise.npy", b"\x00\x01" * 300), "the name says NumPy"),
    ("giant-ibw", lambda tmp: _copy(SAMPLE_PER_FORMAT["ibw"], tmp, edit=_packed(132, "<4i", GIANT, GIANT, 1, 0)),
     f"announces a {GIANT}x{GIANT} px image"),
    ("ibw-truncated-in-note", lambda tmp: _copy(SAMPLE_PER_FORMAT["ibw"], tmp, edit=lambda raw: raw[
        :64 + struct.unpack_from("<i", raw, 4)[0] + 100]), "the file is truncated"),
    ("giant-ibw-npnts", lambda tmp: _copy(SAMPLE_PER_FORMAT["ibw"], tmp, edit=_packed(76, "<i", 10**9)),
     "header is inconsistent"),
    ("giant-sxm", lambda tmp: _copy(SAMPLE_PER_FORMAT["sxm"], tmp, edit=lambda raw: re.sub(
        rb":SCAN_PIXELS:\n\s*\d+\s+\d+", b":SCAN_PIXELS:\n  31623  31623", raw, count=1)),
     f"announces a {GIANT}x{GIANT} px image"),
    ("giant-gsf", lambda tmp: _copy(SAMPLE_PER_FORMAT["gsf"], tmp, edit=lambda raw: raw.replace(
        b"XRes = 300", b"XRes = 31623").replace(b"YRes = 300", b"YRes = 31623")), "announces a 31623x31623"),
    ("giant-gwy", lambda tmp: _copy(SAMPLE_PER_FORMAT["gwy"], tmp, edit=_gwy_giant), f"announces a {GIANT}x{GIANT}"),
    ("giant-gwyo", lambda tmp: _copy(SAMPLE_PER_FORMAT["gwyo"], tmp, edit=_gwy_giant), f"announces a {GIANT}x{GIANT}"),
    ("gwyo-unknown-entry-type", scratch_file("old.gwy", b"GWYO" + _gwy_object(
        b"GwyContainer", struct.pack("<I", 99) + b"/0/data\0")), "entry '/0/data' has unknown type 99"),
    ("giant-mdt", lambda tmp: _copy(SAMPLE_PER_FORMAT["mdt"], tmp, edit=lambda raw: _packed(
        MDT_X_MAX + MDT_CALIBRATION, "<q", GIANT - 1)(_packed(MDT_X_MAX, "<q", GIANT - 1)(raw))),
     f"announces a {GIANT}x{GIANT} px image"),
    ("mdt-frame-past-the-end", lambda tmp: _copy(SAMPLE_PER_FORMAT["mdt"], tmp, edit=_packed(MDT_FRAME_2, "<I", 2**31)),
     "frame 2 of 3 claims 2147483648 bytes"),
    ("mdt-billion-cells", lambda tmp: _copy(SAMPLE_PER_FORMAT["mdt"], tmp, edit=_packed(MDT_CELLS, "<Q", 10**9)),
     "holds 1000000000 cells for a 256x256 px image"),
    ("mdt-unknown-data-type", lambda tmp: _copy(SAMPLE_PER_FORMAT["mdt"], tmp, edit=_packed(
        MDT_X_MAX + 2 * MDT_CALIBRATION + 8, "<i", 7)), "stores data type 7"),
    ("mdt-header-says-longer", lambda tmp: _copy(SAMPLE_PER_FORMAT["mdt"], tmp, edit=_packed(4, "<I", 2**31)),
     "the file is truncated"),
    ("giant-npz", _npz_giant, f"announces a {GIANT}x{GIANT} px image"),
    ("giant-npy", scratch_file("giant.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, "
                                        b"'shape': (31623, 31623), }" + b" " * 53 + b"\n" + bytes(64)),
     "could not read it as NumPy"),
    ("giant-tiff", _tiff_giant, "announces a 31623x31623"),
    ("giant-stp", lambda tmp: _copy(SAMPLE_PER_FORMAT["stp"], tmp, edit=lambda raw: raw.replace(
        b"Number of rows: 512", b"Number of rows: 999999999", 1)), "announces a 999999999x512"),
    ("giant-jpk-slots", lambda tmp: _copy(SAMPLE_PER_FORMAT["jpk"], tmp, edit=lambda raw: re.sub(
        re.escape(struct.pack(">HHI", 32896, 9, 1)) + b"....", struct.pack(">HHIi", 32896, 9, 1, 10**9), raw,
        flags=re.DOTALL)), "calibration slots"),
    ("gwy-unterminated-string", scratch_file("loop.gwy", b"GWYP" + _gwy_object(b"GwyContainer", b"/0/data/title\0sab")),
     "a string runs past the end"),
    ("gwy-huge-string-array",
     scratch_file("many.gwy", b"GWYP" + _gwy_object(b"GwyContainer", b"names\0S\xff\xff\xff\xff")),
     "announces 4294967295 items"),
    ("giant-nid", _nid_edit(b"Points=128\r\nLines=128\r\nFrame", b"Points=31623\r\nLines=31623\r\nFrame", 1),
     f"announces a {GIANT}x{GIANT} px image"),
    ("nid-billion-channel-slots", _nid_edit(b"Gr0-Count=21", b"Gr0-Count=1000000000"),  # NSFopen would loop 10^9x
     "announces 1000000000 channels in group 0"),
    ("nid-cut-by-ten-bytes", lambda tmp: _copy(SAMPLE_PER_FORMAT["nid"], tmp, edit=lambda raw: raw[:-10]),
     "the file is truncated"),
    ("nid-padded", lambda tmp: _copy(SAMPLE_PER_FORMAT["nid"], tmp, edit=lambda raw: raw + bytes(10)),
     "10 bytes follow the 131072 bytes of data"),  # NSFopen reads from the end: it would decode shifted data
    ("nid-megabyte-header-line", _nid_edit(b"Op. mode=Dynamic Force", b"Op. mode=" + b"x" * 3_000_000),
     "the header has a 3000009-byte line"),  # NSFopen would make a lines x 3 MB array of the header (1.8 GB)
    ("nid-8-bit", _nid_edit(b"SaveBits=16", b"SaveBits=8"), "NSFopen reads only Binary Signed Intel 16- or 32-bit"),
    ("no-header-end-spm", lambda tmp: _copy(SAMPLE_PER_FORMAT["spm"], tmp, edit=lambda raw: raw.replace(
        b"\\*File list end", b"\\*File list gone")), r"no '\\\*File list end' line"),
    ("igor-version-2", lambda tmp: _copy(SAMPLE_PER_FORMAT["ibw"], tmp, edit=_packed(0, "<h", 2)),
     "version 2 holds 1-D data only"),
    ("three-d", _npy("stack.npy", np.zeros((2, 8, 8))), "must be 2-D"),
    ("ragged-text", scratch_file("ragged.txt", b"# Width: 1 um\n# Height: 1 um\n1e-9 2e-9\n3e-9\n"),
     "could not read it as text matrix"),
    ("non-ascii-name", scratch_file("höhe_高さ.gsf", b"Gwyddion Simple Field 1.0\nXRes = 2\n"), "höhe_高さ.gsf"),
    ("nul-in-name", lambda tmp: Path(str(tmp / "a\0b.ibw")), "cannot access it"),
    ("name-too-long", lambda tmp: tmp / ("x" * 300 + ".ibw"), "cannot access it|no such file"),
]


#: Well-formed files whose image cannot be used: ``read`` refuses them, ``list_channels`` still lists them.
UNUSABLE: list[tuple[str, Builder, str]] = [
    ("nan-inf-heights", _npy("holes.npy", _nan_image()), "2 of 4096 values NaN or Inf"),
    ("one-pixel", _npy("dot.npy", np.ones((1, 1))), "is 1x1 px; an image needs at least 2x2"),
    ("no-height-channel", _npz_phase_only, r"no height channel among 'Phase' \(m\)"),
    ("mdt-current-only", lambda tmp: _copy(SAMPLE_PER_FORMAT["mdt"], tmp),
     r"no height channel among '1F:Iprobe \(2\)' \(A\)"),
    ("text-in-meters-too-big", scratch_file("gwy.txt", b"# Width: 1 um\n# Height: 1 um\n5 6\n7 8\n"),
     "cannot be heights in meters"),
    ("csv-without-pixel-size", scratch_file("matrix.csv", b"1e-9,2e-9\n3e-9,4e-9\n"), "does not say its pixel size"),
]


def _assert_clear(refused: Refusal, pattern: str, path: Path) -> None:
    """The refusal names the file and the problem, and allocated nothing near what a header announced."""
    message = str(refused.error)
    assert re.search(pattern, message), message
    assert path.name in message
    assert refused.peak < ALLOCATION_LIMIT, f"{refused.peak / 2**20:.0f} MiB allocated to refuse it"


@pytest.mark.usefixtures("warm_readers")
@pytest.mark.parametrize(("builder", "pattern"), [pytest.param(b, p, id=i) for i, b, p in REFUSED])
def test_hostile_file_is_refused_clearly_without_allocating(tmp_path: Path, builder: Builder, pattern: str) -> None:
    path = builder(tmp_path)
    _assert_clear(refusal(lambda: read(path)), pattern, path)
    _assert_clear(refusal(lambda: list_channels(path)), pattern, path)


@pytest.mark.usefixtures("warm_readers")
@pytest.mark.parametrize(("builder", "pattern"), [pytest.param(b, p, id=i) for i, b, p in UNUSABLE])
def test_unusable_image_is_refused_by_read_but_listed(tmp_path: Path, builder: Builder, pattern: str) -> None:
    path = builder(tmp_path)
    _assert_clear(refusal(lambda: read(path)), pattern, path)
    assert list_channels(path)


#: Unusual but valid images: read as they are, in meters (what enhance then makes of them is the CLI's job).
ACCEPTED: list[tuple[str, np.ndarray]] = [
    ("constant", np.full((32, 32), 5e-9)),
    ("two-by-thousand", surface(2, 1000)),
    ("non-square", surface(48, 80)),
    ("int16-raw-counts", (surface() * 1e12).astype(np.int16)),
]


@pytest.mark.parametrize(("name", "array"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_unusual_but_valid_image_reads_as_is(tmp_path: Path, name: str, array: np.ndarray) -> None:
    hm = read(write_npy(tmp_path / f"{name}.npy", array))
    assert hm.shape == array.shape and hm.data.dtype == np.float64
    np.testing.assert_array_equal(hm.data, array.astype(np.float64))


def test_non_ascii_name_reads(tmp_path: Path) -> None:
    path = write_npy(tmp_path / "Probe_höhe_高さ.npy", surface())
    assert read(path).source == path


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "scan.ibw"
    os.mkfifo(fifo)
    _assert_clear(refusal(lambda: read(fifo), timeout=10), "not a regular file", fifo)


@pytest.mark.parametrize("suffix", [".gwy", ".tiff", ".npy", ".txt"])
def test_write_refuses_to_replace_a_file_that_appeared_meanwhile(tmp_path: Path, suffix: str) -> None:
    """The writer itself (past ``write``'s exists check) must not replace a file another process just wrote."""
    from afm_sr.io import WRITERS

    target = tmp_path / f"out{suffix}"
    target.write_bytes(b"the other process's result")
    with pytest.raises(AFMFileError, match="exists"):
        WRITERS[suffix](HeightMap(surface(), (1e-8, 1e-8)), target)
    assert target.read_bytes() == b"the other process's result"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temp file, no sidecar left


def test_failed_npy_write_leaves_neither_array_nor_sidecar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", disk_full)
    with pytest.raises(AFMFileError, match=r"the disk is full .*No space left on device"):
        write(HeightMap(surface(), (1e-8, 1e-8)), tmp_path / "out.npy")
    assert list(tmp_path.iterdir()) == []


def test_write_into_missing_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(AFMFileError, match="does not exist; create it first"):
        write(HeightMap(surface(), (1e-8, 1e-8)), tmp_path / "nowhere" / "out.gwy")


@pytest.mark.usefixtures("no_root")
def test_write_into_read_only_folder_is_one_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o555)
    with pytest.raises(AFMFileError, match="is the folder writable"):
        write(HeightMap(surface(), (1e-8, 1e-8)), folder / "out.gwy")
    assert list(folder.iterdir()) == []


def test_written_file_gets_normal_permissions(tmp_path: Path) -> None:
    """Temp files are private (0600); the published result must get the umask's permissions like any new file.

    Exported weights too: safetensors recreates the file it writes with mode 0600, which the release shipped.
    """
    from test_infer import write_tiny_checkpoint

    from afm_sr.infer import export_weights

    umask = os.umask(0o022)
    try:
        path = write(HeightMap(surface(), (1e-8, 1e-8)), tmp_path / "out.tiff")
        weights = export_weights(write_tiny_checkpoint(tmp_path / "tiny.ckpt"), tmp_path / "w.safetensors")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644 and weights.stat().st_mode & 0o777 == 0o644
