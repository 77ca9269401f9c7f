"""Bad input gives one AFMFileError naming the file and the problem, never a library traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import afm_sr.io as io
from afm_sr.errors import AFMFileError
from afm_sr.io import HeightMap


def _good_file(tmp_path: Path, suffix: str) -> Path:
    hm = HeightMap(np.random.default_rng(0).normal(0, 1e-9, (16, 16)), (1e-8, 1e-8))
    return io.write(hm, tmp_path / f"good{suffix}")


def _read_fails(path: Path, match: str, **kwargs: object) -> str:
    with pytest.raises(AFMFileError, match=match) as info:
        io.read(path, **kwargs)
    assert str(path) in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("suffix", [".gwy", ".tiff", ".npy"])
def test_truncated_file(tmp_path: Path, suffix: str) -> None:
    path = _good_file(tmp_path, suffix)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _read_fails(path, r"truncated|could not read it as .* is the file complete")


def test_truncated_gsf_says_truncated(tmp_path: Path) -> None:
    path = tmp_path / "t.gsf"
    path.write_bytes(b"Gwyddion Simple Field 1.0\nXRes = 64\nYRes = 64\n\0\0" + b"\0" * 100)
    _read_fails(path, "truncated")


def test_absurd_header_is_refused_before_allocating(tmp_path: Path) -> None:
    path = tmp_path / "huge.gsf"
    path.write_bytes(b"Gwyddion Simple Field 1.0\nXRes = 100000\nYRes = 100000\n\0\0" + b"\0" * 64)
    _read_fails(path, "cannot be right")


def test_wrong_extension(tmp_path: Path) -> None:
    path = _good_file(tmp_path, ".npy").rename(tmp_path / "scan.gwy")
    _read_fails(path, "content does not start like one.*NumPy")


def test_unknown_extension_and_content(tmp_path: Path) -> None:
    path = tmp_path / "scan.xyzzy"
    path.write_bytes(b"hello")
    _read_fails(path, "unknown file format")


def test_text_in_a_binary_format(tmp_path: Path) -> None:
    path = tmp_path / "scan.ibw"
    path.write_text("not a wave at all\n")
    _read_fails(path, "Igor")


@pytest.mark.parametrize(("setup", "match"), [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.mkdir(), "directory"),
    (lambda p: None, "no such file"),
])
def test_empty_directory_and_missing(tmp_path: Path, setup: object, match: str) -> None:
    path = tmp_path / "x.gwy"
    setup(path)  # type: ignore[operator]
    _read_fails(path, match)


def test_no_height_channel(tmp_path: Path) -> None:
    path = tmp_path / "phase.npz"
    np.savez(path, Phase=np.ones((4, 4)), Amplitude=np.ones((4, 4)), pixel_size_m=1e-8)
    message = _read_fails(path, "no height channel")
    assert "Phase" in message and "Amplitude" in message
    assert io.read(path, channel="Phase").shape == (4, 4)


def test_missing_channel_lists_the_ones_there(tmp_path: Path) -> None:
    message = _read_fails(_good_file(tmp_path, ".gwy"), "no channel 'Current'", channel="Current")
    assert "Height" in message


def test_nan_data(tmp_path: Path) -> None:
    path = tmp_path / "nan.npy"
    np.save(path, np.full((8, 8), np.nan))
    _read_fails(path, "NaN", pixel_size=1e-8)


def test_one_pixel_image(tmp_path: Path) -> None:
    path = tmp_path / "one.npy"
    np.save(path, np.ones((1, 1)) * 1e-9)
    _read_fails(path, "1x1 px", pixel_size=1e-8)


def test_three_d_array(tmp_path: Path) -> None:
    path = tmp_path / "cube.npy"
    np.save(path, np.ones((2, 3, 4)))
    _read_fails(path, "2-D", pixel_size=1e-8)


def test_missing_reader_library_says_how_to_repair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pySPM", None)  # makes ``import pySPM`` raise ImportError
    path = tmp_path / "scan.spm"
    path.write_bytes(b"\\*File list\r\n\\Version: 0x05120005\r\n")
    _read_fails(path, r"needs the package 'pySPM', an afm-sr dependency .*pip install pySPM")


@pytest.mark.parametrize(("suffix", "pixel"), [(".gwy", 2.0), (".tiff", 2.0), (".npy", 2.0), (".txt", 2.0),
                                               (".gwy", 1e-15), (".npy", 1e-15)])
def test_implausible_stored_pixel_size_is_refused_or_replaced(tmp_path: Path, suffix: str, pixel: float) -> None:
    path = io.write(HeightMap(np.random.default_rng(0).random((16, 16)), (pixel, pixel), channel="Height"),
                    tmp_path / f"scan{suffix}")
    _read_fails(path, "not a plausible AFM pixel size .* --pixel-size")
    hm = io.read(path, pixel_size=1e-8)
    assert hm.pixel_size == (1e-8, 1e-8) and hm.metadata["pixel_size_from_user"]
