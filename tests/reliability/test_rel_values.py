"""Numbers: a non-finite result is an error, never a file; user numbers are checked where they are parsed; complex
data is refused, not cast; and the error output of a bad input is its one line, without warnings in front of it."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from rel_support import REPO, CliResult, error_lines, surface, write_npy
from safetensors.torch import load_file, save_file

from afm_sr.errors import AFMFileError, InputError
from afm_sr.io import HeightMap, read, write

Cli = Callable[..., CliResult]


@pytest.fixture(scope="module")
def nan_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with one weight set to NaN (what a diverged training exports)."""
    from safetensors import safe_open

    with safe_open(str(tiny_model), framework="pt") as handle:
        meta = handle.metadata()
    tensors = load_file(str(tiny_model))
    tensors["body.0.weight"][0, 0, 1, 1] = float("nan")
    path = tmp_path_factory.mktemp("nan") / "diverged.safetensors"
    save_file(tensors, str(path), metadata=meta)
    return path


def _only(result: CliResult, code: int = 2) -> str:
    """The one error line of a failed call (exit ``code``, nothing else on stderr, no traceback)."""
    assert result.code == code and "Traceback" not in result.err, result
    assert result.err.count("\n") == 1 and len(error_lines(result.err)) == 1, result.err
    return error_lines(result.err)[0]


@pytest.mark.parametrize("command", ["enhance", "check-gain"])
def test_nan_weights_are_an_error_not_a_nan_result(tmp_path: Path, cli: Cli, nan_model: Path, command: str) -> None:
    src = write_npy(tmp_path / "scan.npy", surface())
    line = _only(cli(command, src, "--model", nan_model, "--device", "cpu"))
    assert str(nan_model) in line and "1 of the model's weights are NaN or Inf" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.json", "scan.npy"]


@pytest.mark.parametrize("value", [1e300, -3e39])
def test_heights_beyond_float32_are_refused_without_warnings(tmp_path: Path, cli: Cli, tiny_model: Path,
                                                              value: float) -> None:
    src = write_npy(tmp_path / "huge.npy", surface() / 1e-9 * value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = _only(cli("enhance", src, "--model", tiny_model, "--device", "cpu"))
    assert "beyond the float32 range" in line and str(src) in line
    assert [str(w.message) for w in caught] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.json", "huge.npy"]


def test_api_enhance_refuses_a_non_finite_result(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever makes the network return NaN, enhance raises instead of returning it."""
    from afm_sr.infer import enhance, pipeline

    monkeypatch.setattr(pipeline, "tiled_sr", lambda *a, **k: np.full((128, 128), np.nan))
    with pytest.raises(InputError, match="16384 of 16384 values are NaN or Inf"):
        enhance(surface(), 2, tiny_model, pixel_size=1e-8, device="cpu")


@pytest.mark.parametrize("suffix", [".gwy", ".tiff", ".npy", ".txt"])
def test_write_never_stores_nan(tmp_path: Path, suffix: str) -> None:
    data = surface()
    data[5, 5] = np.inf
    with pytest.raises(AFMFileError, match="not written: 1 of 4096 values are NaN or Inf"):
        write(HeightMap(data, (1e-8, 1e-8)), tmp_path / f"out{suffix}")
    assert list(tmp_path.iterdir()) == []


def test_float32_formats_refuse_what_float32_cannot_hold(tmp_path: Path) -> None:
    big = HeightMap(surface() * 1e300, (1e-8, 1e-8))
    for suffix in (".tiff", ".npy"):
        with pytest.raises(AFMFileError, match="beyond the float32 range"):
            write(big, tmp_path / f"out{suffix}")
    assert list(tmp_path.iterdir()) == []
    assert np.array_equal(read(write(big, tmp_path / "out.gwy")).data, big.data)  # .gwy stores float64


@pytest.mark.parametrize("value", ["1e308", "nan", "inf", "-1e-8", "0", "1e-15", "2", "1e-8,nan", "1e-8,1e-8,1e-8",
                                   "abc", "1e-8,"])
def test_pixel_size_is_checked_at_parsing(tmp_path: Path, cli: Cli, value: str) -> None:
    src = tmp_path / "bare.npy"
    np.save(src, surface())
    line = _only(cli("info", src, f"--pixel-size={value}"))
    assert line.startswith("afm-sr: error: argument --pixel-size:") and "meters" in line, line


def test_plausible_pixel_sizes_pass(tmp_path: Path, cli: Cli) -> None:
    src = tmp_path / "bare.npy"
    np.save(src, surface())
    for value in ("1e-12", "1e-3", "2e-9,3e-9"):
        assert cli("info", src, "--pixel-size", value).code == 0


@pytest.mark.parametrize("pixel_size", [1e308, float("nan"), 0.0, (1e-8, float("inf"))])
def test_api_pixel_size_is_checked(tmp_path: Path, tiny_model: Path, pixel_size: object) -> None:
    from afm_sr.infer import enhance

    src = tmp_path / "bare.npy"
    np.save(src, surface())
    with pytest.raises(InputError, match="pixel size"):
        read(src, pixel_size=pixel_size)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="pixel size"):
        enhance(surface(), 2, tiny_model, pixel_size=pixel_size, device="cpu")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["0", "-64", "ten", "1.5"])
def test_tile_is_checked_at_parsing(tmp_path: Path, cli: Cli, value: str) -> None:
    line = _only(cli("enhance", tmp_path / "x.npy", "--tile", value))
    assert line.startswith("afm-sr: error: argument --tile:")


def test_complex_data_is_refused_not_cast(tmp_path: Path, cli: Cli, tiny_model: Path) -> None:
    src = write_npy(tmp_path / "fft.npy", surface() + 1j * surface())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = _only(cli("enhance", src, "--model", tiny_model, "--device", "cpu"))
    assert "complex" in line and str(src) in line
    assert [str(w.message) for w in caught] == []
    with pytest.raises(ValueError, match="must be real"):
        HeightMap(surface() + 0j, (1e-8, 1e-8))


def test_decoding_overflow_gives_the_error_without_warnings(tmp_path: Path) -> None:
    """Values that overflow when converted to meters (here 1e300 Gm) are refused as Inf, without a RuntimeWarning."""
    src = write_npy(tmp_path / "giga.npy", surface() / 1e-9 * 1e300)
    src.with_suffix(".json").write_text('{"pixel_size_m": 1e-8, "z_unit": "Gm"}')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(AFMFileError, match="values NaN or Inf"):
            read(src)
    assert [str(w.message) for w in caught] == []


def test_complex_arrays_are_refused_by_the_api(tiny_model: Path) -> None:
    from afm_sr.infer import enhance

    with pytest.raises(InputError, match="real numbers"):
        enhance(surface().astype(np.complex64), 2, tiny_model, pixel_size=1e-8, device="cpu")


def test_bad_inputs_print_their_lines_and_nothing_else(tmp_path: Path, tiny_model: Path) -> None:
    """In a real process (warnings reach stderr there): one error line per bad input, no warning in between."""
    nan = surface()
    nan[1, 1] = np.nan
    inputs = [write_npy(tmp_path / "huge.npy", surface() / 1e-9 * 1e300),
              write_npy(tmp_path / "fft.npy", surface() + 1j),
              write_npy(tmp_path / "nan.npy", nan),
              write_npy(tmp_path / "flat.npy", np.full((32, 32), 2e-9))]
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "default"}
    res = subprocess.run([sys.executable, "-m", "afm_sr.cli", "enhance", *map(str, inputs), "--model",
                          str(tiny_model), "--device", "cpu"], capture_output=True, text=True, timeout=300,
                         check=False, cwd=REPO, env=env)
    assert res.returncode == 2
    lines = res.stderr.splitlines()
    assert len(lines) == len(inputs) and all(line.startswith("afm-sr: error:") for line in lines), res.stderr
    assert [p for p in tmp_path.iterdir() if p.suffix not in (".npy", ".json")] == []

