"""``afm-sr enhance`` and ``afm-sr check-gain``: outputs beside inputs, no overwrites, failures per file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support import SAMPLES
from test_infer import surface, write_tiny_checkpoint

import afm_sr.infer.weights as weights
import afm_sr.io as io
from afm_sr.cli import main
from afm_sr.errors import InputError
from afm_sr.infer import save_preview
from afm_sr.io import HeightMap


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    return write_tiny_checkpoint(tmp_path / "tiny.ckpt")


@pytest.fixture
def scan(tmp_path: Path) -> Path:
    return io.write(HeightMap(surface(40), (2.5e-8, 2.5e-8), channel="Height"), tmp_path / "scan.gwy")


def test_enhance_writes_gwy_beside_input(scan: Path, ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["enhance", str(scan), "--scale", "2", "--model", str(ckpt), "--device", "cpu"]) == 0
    out = io.read(scan.with_name("scan_x2.gwy"))
    assert out.shape == (80, 80) and out.scan_size == pytest.approx((1e-6, 1e-6)) and out.z_unit == "m"
    assert "scan_x2.gwy" in capsys.readouterr().out


def test_enhance_names_the_channels_of_a_file_without_height(ckpt: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    mdt = SAMPLES / "SciFiDatasets__test_mdt.mdt"
    if not mdt.is_file():
        pytest.skip(f"real AFM sample {mdt.name} not found in {SAMPLES} (set AFM_SR_SAMPLES)")
    assert main(["enhance", str(mdt), "--model", str(ckpt), "-o", str(tmp_path / "out.gwy")]) == 2
    assert capsys.readouterr().err.strip() == (f"afm-sr: error: {mdt}: no height channel among '1F:Iprobe (2)' (A); "
                                               "pass channel=... (CLI: --channel) to read one of them anyway")
    assert not (tmp_path / "out.gwy").exists()


def test_enhance_never_overwrites_without_force(scan: Path, ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["enhance", str(scan), "--scale", "2", "--model", str(ckpt)]
    assert main(args) == 0
    before = scan.with_name("scan_x2.gwy").read_bytes()
    capsys.readouterr()
    assert main(args) == 2
    assert "scan_x2.gwy: exists; pass --force" in capsys.readouterr().err
    assert scan.with_name("scan_x2.gwy").read_bytes() == before
    assert main([*args, "--force"]) == 0
    original = scan.read_bytes()
    assert main([*args, "--force", "-o", str(scan)]) == 2  # the input itself, even with --force
    assert "is an input of this run: afm-sr never writes over its inputs" in capsys.readouterr().err
    assert scan.read_bytes() == original


def test_several_files_glob_folder_and_a_bad_one(tmp_path: Path, ckpt: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a", "b"):
        io.write(HeightMap(surface(32), (1e-8, 1e-8)), tmp_path / f"{name}.gwy")
    bad = tmp_path / "c.gwy"
    bad.write_bytes(b"GWYP not really")
    out_dir = tmp_path / "out"
    code = main(["enhance", str(tmp_path / "*.gwy"), str(tmp_path / "none*.ibw"), "-o", str(out_dir),
                 "--format", "npy", "--scale", "4", "--model", str(ckpt)])
    assert code == 2
    assert sorted(p.name for p in out_dir.glob("*.npy")) == ["a_x4.npy", "b_x4.npy"]
    assert io.read(out_dir / "a_x4.npy").shape == (128, 128)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and any(str(bad) in line for line in err) and any("no file matches" in line for line in err)


def test_output_file_and_format_must_agree(scan: Path, ckpt: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["enhance", str(scan), "-o", str(tmp_path / "x.tiff"), "--scale", "2", "--model", str(ckpt)]) == 0
    assert io.read(tmp_path / "x.tiff").shape == (80, 80)
    assert main(["enhance", str(scan), "-o", str(tmp_path / "y.tiff"), "--format", "npy", "--scale", "2",
                 "--model", str(ckpt)]) == 2
    assert "disagree" in capsys.readouterr().err


def test_preview_png(scan: Path, ckpt: Path) -> None:
    assert main(["enhance", str(scan), "--scale", "4", "--model", str(ckpt), "--preview", "--level"]) == 0
    png = scan.with_name("scan_x4_preview.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    hm = io.read(scan)
    with pytest.raises(InputError, match="no 'afm_sr_scale'"):  # a map enhance did not make
        save_preview(hm, hm.with_data(np.kron(hm.data, np.ones((4, 4)))), scan.with_name("other.png"))


@pytest.mark.parametrize(("option", "message"), [(["--device", "tpu"], "device 'tpu' is not supported"),
                                                 (["--model", "missing.ckpt"], "no such weights file")])
def test_bad_options_are_one_line(scan: Path, ckpt: Path, option: list[str], message: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["enhance", str(scan), "--scale", "2", "--model", str(ckpt), *option]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_scale_must_be_supported(scan: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["enhance", str(scan), "--scale", "3"])
    assert exit_.value.code == 2


def test_default_model_missing(scan: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(weights, "default_weights_path", lambda: tmp_path / "nothing.safetensors")
    assert main(["enhance", str(scan), "--scale", "2"]) == 2
    assert "no pretrained model is installed" in capsys.readouterr().err


def test_check_gain_prints_both_methods(tmp_path: Path, ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hr = io.write(HeightMap(surface(64), (1e-8, 1e-8)), tmp_path / "hr.gwy")
    assert main(["check-gain", str(hr), "--scale", "4", "--model", str(ckpt)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "range01" in lines[0] and lines[1].split() == ["file", "HR", "pixels", "method", "PSNR", "(dB)", "SSIM"]
    rows = {line.split()[2]: line.split() for line in lines[3:5]}
    assert set(rows) == {"bicubic", "afm-sr"} and rows["bicubic"][:2] == ["hr.gwy", "64x64"]
    assert all(np.isfinite(float(v)) for row in rows.values() for v in row[3:])
    assert lines[5].split()[0] == "gain"


def test_export_writes_weights_with_gains(ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from afm_sr.infer import load_model

    out = tmp_path / "w.safetensors"
    gains = '{"2": {"psnr": 0.5, "ssim": 0.01}, "8": {"psnr": -0.1, "ssim": 0.0}}'
    assert main(["export", str(ckpt), str(out), "--gains", gains, "--notes", '{"data": "tiny"}']) == 0
    info = load_model(out).info
    assert info.gains[2]["psnr"] == 0.5 and info.extra["data"] == "tiny"
    assert info.gain_warning(8) and not info.gain_warning(2)
    assert main(["export", str(ckpt), str(out)]) == 2  # exists, no --force
    assert "exists" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", str(ckpt), str(out), "--gains", "[1, 2]"])


def test_enhance_says_what_its_self_check_assumed(scan: Path, ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The printed self-check names its pairs: an instrument by default, bicubic on request, else a clear error."""
    base = ["enhance", str(scan), "--scale", "2", "--model", str(ckpt), "--device", "cpu", "--force"]
    assert main(base) == 0
    assert "along the fast axis as a detector does" in capsys.readouterr().out
    meta = io.read(scan.with_name("scan_x2.gwy")).metadata  # .gwy keeps it in /0/meta (Gwyddion's Metadata browser)
    assert meta["afm_sr_self_check_pairs"] == "instrument" and meta["afm_sr_self_check"].startswith("self-check x2")
    assert main([*base, "--check-pairs", "bicubic"]) == 0
    assert "relates to yours as bicubic downscaling" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([*base, "--check-pairs", "gauss"])
    assert "invalid choice: 'gauss'" in capsys.readouterr().err


def test_gwy_metadata_never_overrides_what_the_reader_knows(tmp_path: Path) -> None:
    """An output keeps its input's metadata, but reading it back names its own format and channel index."""
    hm = HeightMap(surface(16), (1e-8, 1e-8), channel="Height",
                   metadata={"format": "NanoScope", "gwy_id": 2, "afm_sr_self_check": "self-check x2"})
    back = io.read(io.write(hm, tmp_path / "out.gwy"))
    assert back.metadata["format"] == "Gwyddion" and back.metadata["gwy_id"] == 0
    assert back.metadata["afm_sr_self_check"] == "self-check x2"
