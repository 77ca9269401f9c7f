"""NT-MDT type-0 (scanned image) frames, built here byte by byte from the layout afm_sr/io/readers/mdt.py documents.

No shared sample has such a frame (ours is an MDA frame, checked against Gwyddion in the reference test), so this
only checks that the parser follows its documented layout: scales, units, row order, title, skipped frames.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

import afm_sr.io as io
from afm_sr.errors import AFMFileError

#: Unit codes of the layout: -1 nm, -2 um, 2 V.
NM, UM, VOLT = -1, -2, 2
VARS_SIZE = 77  # axis scales (30 bytes) + the scan variables the reader skips


def _frame(kind: int, body: bytes, var_size: int = 0) -> bytes:
    """A frame: uint32 size, uint16 type, version, date and time, uint16 variables size, then ``body``."""
    return struct.pack("<IH2B6HH", 22 + len(body), kind, 0, 1, 2023, 4, 5, 11, 46, 5, var_size) + body


def scanned(counts: np.ndarray, steps: tuple[float, float, float], units: tuple[int, int, int],
            title: bytes = b"Height", n_dots: int = 0) -> bytes:
    """A type-0 frame holding int16 ``counts`` (rows in file order), axis steps and unit codes, and a title."""
    scales = b"".join(struct.pack("<ffh", 0.0, step, unit) for step, unit in zip(steps, units, strict=True))
    ny, nx = counts.shape
    body = (scales.ljust(VARS_SIZE, b"\0") + struct.pack("<4H", 0, nx, ny, n_dots) + counts.astype("<i2").tobytes()
            + struct.pack("<I", len(title)) + title)
    return _frame(0, body, VARS_SIZE)


def mdt(*frames: bytes) -> bytes:
    """A file: signature, size after the 33-byte header, index of the last frame, then the frames."""
    payload = b"".join(frames)
    return (b"\x01\xb0\x04\xdc" + struct.pack("<I4xH", len(payload), len(frames) - 1)).ljust(33, b"\0") + payload


COUNTS = np.arange(12, dtype=np.int16).reshape(3, 4) - 5


def test_scanned_frame_reads_with_its_scales_units_and_title(tmp_path: Path) -> None:
    path = tmp_path / "scan.mdt"
    path.write_bytes(mdt(_frame(3, b"a text frame"), scanned(COUNTS, (0.5, 0.25, 0.1), (UM, UM, NM))))
    hm = io.read(path)
    assert (hm.channel, hm.z_unit) == ("Height (2)", "m")
    assert hm.pixel_size == pytest.approx((0.5e-6, 0.25e-6))
    np.testing.assert_allclose(hm.data, COUNTS[::-1] * 0.1e-9)  # bottom row first in the file


def test_untitled_voltage_frame_is_listed_but_no_height(tmp_path: Path) -> None:
    path = tmp_path / "volts.mdt"
    path.write_bytes(mdt(scanned(COUNTS, (1.0, 1.0, 0.01), (NM, NM, VOLT), title=b"")))
    assert io.list_channels(path) == ["Channel (1)"]
    with pytest.raises(AFMFileError, match=r"no height channel among 'Channel \(1\)' \(V\)"):
        io.read(path)


@pytest.mark.parametrize(("data", "problem"), [
    (mdt(scanned(COUNTS, (1.0, 1.0, 0.1), (NM, NM, NM), n_dots=2)), "2 spectroscopy dots"),
    (mdt(scanned(COUNTS, (1.0, 1.0, 0.1), (VOLT, VOLT, NM))), "not a length"),
    (mdt(scanned(COUNTS, (1.0, 1.0, 0.1), (NM, NM, 99))), "unknown unit code"),
    (mdt(scanned(COUNTS, (1.0, 1.0, 0.1), (NM, NM, NM)))[:-30], "truncated"),
    (mdt(_frame(3, b"only text")), "no image found"),
])
def test_unreadable_frames_say_why(tmp_path: Path, data: bytes, problem: str) -> None:
    path = tmp_path / "bad.mdt"
    path.write_bytes(data)
    with pytest.raises(AFMFileError, match=problem):
        io.read(path)
