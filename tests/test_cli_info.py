"""``afm-sr info``: a tidy table for good files, one error line and a non-zero exit for bad ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support import SAMPLES

import afm_sr.io as io
from afm_sr.cli import main
from afm_sr.io import HeightMap


@pytest.fixture
def scan(tmp_path: Path) -> Path:
    data = np.linspace(-2e-9, 3e-9, 64 * 48).reshape(48, 64)
    return io.write(HeightMap(data, (1e-8, 1e-8), channel="Height"), tmp_path / "scan.gwy")


def test_info_prints_a_table(scan: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(scan)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["file", "format"]
    row = lines[2]
    assert "scan.gwy" in row and "Gwyddion" in row and "64x48" in row
    assert "0.64 x 0.48" in row and "-2 .. 3 nm" in row


def test_info_runs_without_torch(scan: Path) -> None:
    """The parser's scale, device and precision choices come from afm_sr.choices, so info never imports torch."""
    code = (f"import sys; from afm_sr.cli import main; assert main(['info', {str(scan)!r}]) == 0; "
            "assert 'torch' not in sys.modules, 'afm-sr info imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_info_bad_file_is_one_line_and_non_zero(tmp_path: Path, scan: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.ibw"
    empty.write_bytes(b"")
    assert main(["info", str(scan), str(empty)]) != 0
    out = capsys.readouterr()
    assert "scan.gwy" in out.out
    assert out.err.strip() == f"afm-sr: error: {empty}: the file is empty"


def test_info_unknown_channel_error(scan: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--channel", "Phase", str(scan)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no channel 'Phase'" in err and "Traceback" not in err


def test_info_pixel_size_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.txt"
    path.write_text("1 2\n3 4\n")
    assert main(["info", "--pixel-size", "1e-6", "--z-unit", "nm", str(path)]) == 0
    assert "2 x 2" in capsys.readouterr().out


def test_info_channels_lists_each_channel_with_its_unit(scan: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--channels", str(scan)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["file", "channel", "unit", "pixels", "scan", "size", "(um)", "read"]
    assert lines[2].split() == ["scan.gwy", "Height", "m", "64x48", "0.64", "x", "0.48", "yes"]


@pytest.fixture
def mdt() -> Path:
    path = SAMPLES / "SciFiDatasets__test_mdt.mdt"
    if not path.is_file():
        pytest.skip(f"real AFM sample {path.name} not found in {SAMPLES} (set AFM_SR_SAMPLES)")
    return path


def test_info_lists_a_file_without_height_channel(mdt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The NT-MDT sample holds only a current map: info lists it and its channel instead of failing."""
    assert main(["info", str(mdt)]) == 0
    assert "NT-MDT  no height channel (1 channel: see --channels)" in capsys.readouterr().out
    assert main(["info", "--channels", str(mdt)]) == 0
    assert capsys.readouterr().out.splitlines()[2].split() == [mdt.name, "1F:Iprobe", "(2)", "A", "256x256",
                                                               "3.001", "x", "3.001"]
    assert main(["info", "--channel", "1F:Iprobe (2)", str(mdt)]) == 0
    assert "-5.875e-11 .. 5.269e-08 A" in capsys.readouterr().out
