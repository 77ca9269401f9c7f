"""Bad-input corpus for the ``afm-sr`` command: one ``afm-sr: error:`` line naming the file and what to do,
exit code 2, no traceback, and no partial or overwritten output file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from rel_support import CliResult, error_lines, scratch_file, surface, write_npy

Cli = Callable[..., CliResult]
Maker = Callable[[Path], Path]


def _npy(name: str, array: np.ndarray) -> Maker:
    return lambda tmp: write_npy(tmp / name, array)


def _nan() -> np.ndarray:
    image = surface()
    image[0, 0] = np.nan
    return image



#: Inputs every file-reading subcommand must refuse: (id, maker, pattern of the error line after the file name).
BAD_INPUTS: list[tuple[str, Maker, str]] = [
    ("missing", lambda tmp: tmp / "absent.ibw", "no such file"),
    ("empty", scratch_file("empty.gwy", b""), "the file is empty"),
    ("directory", lambda tmp: (tmp / "d.sxm").mkdir() or tmp / "d.sxm", "is a directory"),
    ("wrong-magic", scratch_file("fake.sxm", b"GWYP" + bytes(100)), "the name says Nanonis SXM"),
    ("nan", _npy("nan.npy", _nan()), "NaN or Inf"),
    ("constant", _npy("flat.npy", np.full((64, 64), 3e-9)), "constant"),
    ("one-pixel", _npy("dot.npy", np.ones((1, 1))), "1x1 px"),
    ("non-ascii-broken", scratch_file("Höhe_高さ.gsf", b"Gwyddion Simple Field 1.0\n"), "Höhe_高さ.gsf"),
]
#: Images with a side under twice the scale factor (x4 by default): valid files, but nothing to work on.
TOO_SMALL: list[tuple[str, Maker]] = [("two-by-thousand", _npy("strip.npy", surface(2, 1000))),
                                      ("smaller-than-scale", _npy("tiny.npy", surface(3, 3)))]


def _assert_one_clear_error(result: CliResult, path: Path, pattern: str) -> None:
    """Exit code 2, exactly one error line naming ``path`` and matching ``pattern``, no traceback."""
    assert result.code == 2, result
    lines = error_lines(result.err)
    assert len(lines) == 1, result.err
    assert path.name in lines[0] and re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in result.err


@pytest.mark.parametrize(("maker", "pattern"), [pytest.param(m, p, id=i) for i, m, p in BAD_INPUTS])
def test_info_bad_input(tmp_path: Path, cli: Cli, maker: Maker, pattern: str) -> None:
    path = maker(tmp_path)
    if pattern == "constant":  # info only describes: a flat scan is a valid file
        assert cli("info", path).code == 0
        return
    _assert_one_clear_error(cli("info", path), path, pattern)


@pytest.mark.parametrize(("maker", "pattern"), [pytest.param(m, p, id=i) for i, m, p in BAD_INPUTS])
def test_enhance_bad_input_writes_nothing(tmp_path: Path, cli: Cli, tiny_model: Path, maker: Maker,
                                          pattern: str) -> None:
    path = maker(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    _assert_one_clear_error(cli("enhance", path, "-o", out, "--model", tiny_model, "--device", "cpu"), path, pattern)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(("maker", "pattern"), [pytest.param(m, p, id=i) for i, m, p in BAD_INPUTS])
def test_check_gain_bad_input(tmp_path: Path, cli: Cli, tiny_model: Path, maker: Maker, pattern: str) -> None:
    path = maker(tmp_path)
    _assert_one_clear_error(cli("check-gain", path, "--model", tiny_model, "--device", "cpu"), path, pattern)


@pytest.mark.parametrize("command", ["enhance", "check-gain"])
@pytest.mark.parametrize("maker", [pytest.param(m, id=i) for i, m in TOO_SMALL])
def test_image_too_small_for_the_scale(tmp_path: Path, cli: Cli, tiny_model: Path, maker: Maker, command: str) -> None:
    path = maker(tmp_path)
    _assert_one_clear_error(cli(command, path, "--model", tiny_model, "--device", "cpu"), path, "too small")
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".npy"]


def test_enhance_keeps_an_existing_output_without_force(tmp_path: Path, cli: Cli, tiny_model: Path) -> None:
    src = write_npy(tmp_path / "scan.npy", surface())
    dest = tmp_path / "scan_x4.gwy"
    dest.write_bytes(b"a result the user wants to keep")
    result = cli("enhance", src, "--model", tiny_model, "--device", "cpu")
    _assert_one_clear_error(result, dest, "exists; pass --force")
    assert dest.read_bytes() == b"a result the user wants to keep"
    assert cli("enhance", src, "--model", tiny_model, "--device", "cpu", "--force").code == 0
    assert dest.read_bytes()[:4] == b"GWYP"


def test_enhance_into_missing_folder_says_so(tmp_path: Path, cli: Cli, tiny_model: Path) -> None:
    src = write_npy(tmp_path / "scan.npy", surface())
    dest = tmp_path / "nowhere" / "scan.gwy"
    _assert_one_clear_error(cli("enhance", src, "-o", dest, "--model", tiny_model, "--device", "cpu"), dest,
                            "does not exist; create it first")
    assert not dest.parent.exists()


@pytest.mark.usefixtures("no_root")
def test_enhance_into_read_only_folder_says_so(tmp_path: Path, cli: Cli, tiny_model: Path) -> None:
    src = write_npy(tmp_path / "scan.npy", surface())
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    result = cli("enhance", src, "-o", locked / "scan.gwy", "--model", tiny_model, "--device", "cpu")
    _assert_one_clear_error(result, locked / "scan.gwy", "is the folder writable")
    assert list(locked.iterdir()) == []


def test_enhance_with_a_file_that_is_not_a_model(tmp_path: Path, cli: Cli) -> None:
    src = write_npy(tmp_path / "scan.npy", surface())
    model = tmp_path / "weights.ckpt"
    model.write_text("not a checkpoint")
    _assert_one_clear_error(cli("enhance", src, "--model", model, "--device", "cpu"), model,
                            "neither a PyTorch/Lightning checkpoint nor a .safetensors file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.json", "scan.npy", "weights.ckpt"]


def test_one_bad_file_does_not_stop_the_others(tmp_path: Path, cli: Cli, tiny_model: Path) -> None:
    good = write_npy(tmp_path / "good.npy", surface())
    bad = tmp_path / "bad.gwy"
    bad.write_bytes(b"")
    result = cli("enhance", bad, good, "--model", tiny_model, "--device", "cpu")
    _assert_one_clear_error(result, bad, "empty")
    assert (tmp_path / "good_x4.gwy").is_file() and not (tmp_path / "bad_x4.gwy").exists()


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    """Without --debug a command-level error is one line; with it the traceback is there for a bug report."""
    model = tmp_path / "absent.ckpt"
    args = ["enhance", str(tmp_path / "x.npy"), "--model", str(model), "--device", "cpu"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    plain = subprocess.run([sys.executable, "-m", "afm_sr.cli", *args], capture_output=True, text=True, env=env,
                           timeout=120, check=False)
    debug = subprocess.run([sys.executable, "-m", "afm_sr.cli", "--debug", *args], capture_output=True, text=True,
                           env=env, timeout=120, check=False)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert error_lines(plain.stderr) == [f"afm-sr: error: {model}: no such weights file"]
    assert debug.returncode != 0 and "Traceback" in debug.stderr
