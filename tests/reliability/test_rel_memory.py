"""The memory budget: small files that decompress to hundreds of MB, and results of many GB, are refused before
anything that size is allocated, with the size and how to raise the limit; a MemoryError that still happens is one
line.

Hostile files here decompress to 128-320 MB (a real attack would be GBs); the limit is set to 64 MB through
``AFM_SR_MEMORY_LIMIT``, the ``memory_limit`` argument or ``--memory-limit``, so the tests mean the same on any
machine. The default (half the available memory) is checked on its own.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import tifffile
from rel_support import ALLOCATION_LIMIT, SAMPLE_PER_FORMAT, CliResult, error_lines, refusal, sample, surface, write_npy

from afm_sr.errors import InputError
from afm_sr.io import budget, read

LIMIT = "64M"
#: What every refusal must say: the size it needs and the switches that raise the limit.
NAMES_SIZE_AND_FIX = re.compile(r"needs about [0-9.]+ [MG]iB.*memory limit of 64\.0 MiB.*--memory-limit.*"
                                r"AFM_SR_MEMORY_LIMIT")

Cli = Callable[..., CliResult]


@pytest.fixture
def limited(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the test under AFM_SR_MEMORY_LIMIT=64M."""
    monkeypatch.setenv(budget.ENV, LIMIT)


def _deflate_tiff(tmp: Path) -> Path:
    """A ~300 kB zlib-tiled float32 TIFF of 8192x8192 px (256 MB decoded), written tile by tile."""
    def tiles() -> Iterator[np.ndarray]:
        for _ in range(32 * 32):
            yield np.zeros((256, 256), np.float32)

    path = tmp / "bomb.tiff"
    tifffile.imwrite(path, tiles(), shape=(8192, 8192), dtype=np.float32, tile=(256, 256), compression="zlib")
    return path


def _npz(tmp: Path) -> Path:
    """A ~130 kB .npz holding a 4096x8192 float32 array (128 MB decompressed)."""
    path = tmp / "bomb.npz"
    np.savez_compressed(path, Height=np.zeros((4096, 8192), np.float32), pixel_size_m=np.array([1e-8, 1e-8]))
    return path


def _sparse_npy(tmp: Path) -> Path:
    """An 8192x8192 float32 .npy that takes 8 kB on disk (a sparse file) and 256 MB once read."""
    path = tmp / "sparse.npy"
    np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(8192, 8192)).flush()  # header only
    path.with_suffix(".json").write_text('{"pixel_size_m": 1e-8}')
    return path


def _gzip_h5jpk(tmp: Path) -> Path:
    """The JPK HDF5 sample with one channel replaced by 2^22 x 4 gzip-compressed int32 (256 frames, 64 MB raw)."""
    h5py = pytest.importorskip("h5py")
    path = tmp / "bomb.h5-jpk"
    shutil.copy(sample(SAMPLE_PER_FORMAT["h5-jpk"]), path)
    with h5py.File(path, "r+") as handle:
        del handle["Measurement_000/Channel_001/Height"]
        handle.create_dataset("Measurement_000/Channel_001/Height", shape=(1 << 22, 4), dtype=np.int32,
                              compression="gzip", chunks=(1 << 16, 4))  # never written: the fill value, compressed
    return path


BOMBS = [("deflate-tiff", _deflate_tiff), ("npz", _npz), ("sparse-npy", _sparse_npy), ("gzip-h5-jpk", _gzip_h5jpk)]


@pytest.mark.usefixtures("limited", "warm_readers")
@pytest.mark.parametrize("make", [pytest.param(m, id=i) for i, m in BOMBS])
def test_small_file_that_decompresses_past_the_limit_is_refused_before_allocating(tmp_path: Path,
                                                                                  make: Callable[[Path], Path]) -> None:
    path = make(tmp_path)
    assert path.stat().st_blocks * 512 < 3 << 20, "the hostile file should be small on disk"
    refused = refusal(lambda: read(path))
    assert path.name in str(refused.error) and NAMES_SIZE_AND_FIX.search(str(refused.error)), refused.error
    assert refused.peak < ALLOCATION_LIMIT, f"{refused.peak / 2**20:.0f} MiB allocated to refuse it"


def test_memory_limit_argument_overrides_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _npz(tmp_path)
    monkeypatch.setenv(budget.ENV, "64G")
    refused = refusal(lambda: read(path, memory_limit=LIMIT))
    assert NAMES_SIZE_AND_FIX.search(str(refused.error)) and "given: 64M" in str(refused.error)
    assert read(path, memory_limit="1G").shape == (4096, 8192)


@pytest.mark.usefixtures("limited")
def test_enhance_refuses_a_result_past_the_limit_before_computing(tmp_path: Path, tiny_model: Path) -> None:
    from afm_sr.infer import enhance

    image = surface(512, 512)
    with pytest.raises(InputError, match=NAMES_SIZE_AND_FIX) as caught:
        enhance(image, 8, tiny_model, pixel_size=1e-8, device="cpu")
    assert "4096x4096 px" in str(caught.value)
    with pytest.raises(InputError, match="given: 1M"):
        enhance(image, 8, tiny_model, pixel_size=1e-8, device="cpu", memory_limit="1M")


def test_enhance_counts_the_work_arrays_of_an_untiled_run(tiny_model: Path) -> None:
    """``tile=None`` runs the network on the whole image: its activations are what the limit must see."""
    from afm_sr.infer import enhance

    image = surface(256, 256)
    assert enhance(image, 2, tiny_model, pixel_size=1e-8, device="cpu", memory_limit="64M").shape == (512, 512)
    with pytest.raises(InputError, match="needs about"):
        enhance(image, 8, tiny_model, pixel_size=1e-8, device="cpu", tile=None, memory_limit="64M")


@pytest.mark.usefixtures("limited")
def test_check_gain_counts_its_ssim_maps(tiny_model: Path) -> None:
    from afm_sr.infer import check_gain

    with pytest.raises(InputError, match=NAMES_SIZE_AND_FIX):  # 256x256 px: ~630 MB of SSIM convolution
        check_gain(surface(256, 256), 2, tiny_model, device="cpu")
    assert check_gain(surface(48, 48), 2, tiny_model, device="cpu").shape == (48, 48)


@pytest.mark.parametrize("how", ["option", "environment"])
def test_cli_enhance_past_the_limit_is_one_line_and_writes_nothing(tmp_path: Path, cli: Cli, tiny_model: Path,
                                                                   monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    src = write_npy(tmp_path / "scan.npy", surface(512, 512))
    extra = ["--memory-limit", LIMIT] if how == "option" else []
    if how == "environment":
        monkeypatch.setenv(budget.ENV, LIMIT)
    result = cli("enhance", src, "--scale", "8", "--model", tiny_model, "--device", "cpu", *extra)
    assert result.code == 2 and "Traceback" not in result.err
    lines = error_lines(result.err)
    assert len(lines) == 1 and NAMES_SIZE_AND_FIX.search(lines[0]), result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.json", "scan.npy"]


@pytest.mark.usefixtures("limited")
def test_cli_info_on_a_decompression_bomb_is_one_line(tmp_path: Path, cli: Cli) -> None:
    path = _npz(tmp_path)
    result = cli("info", path)
    assert result.code == 2 and len(error_lines(result.err)) == 1, result.err
    assert NAMES_SIZE_AND_FIX.search(error_lines(result.err)[0])


def test_a_memory_error_that_still_happens_is_one_line(tmp_path: Path, cli: Cli, tiny_model: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory taken by other processes meanwhile: the allocation fails although the estimate fitted."""
    import afm_sr.infer

    def no_memory(*args: object, **kwargs: object) -> None:
        raise MemoryError("Unable to allocate 32.0 GiB for an array with shape (65536, 65536)")

    monkeypatch.setattr(afm_sr.infer, "enhance", no_memory)
    good, other = write_npy(tmp_path / "scan.npy", surface()), write_npy(tmp_path / "other.npy", surface())
    result = cli("enhance", good, other, "--model", tiny_model, "--device", "cpu")
    assert result.code == 2 and "Traceback" not in result.err
    lines = error_lines(result.err)
    assert len(lines) == 2 and all("out of memory (Unable to allocate 32.0 GiB" in line for line in lines), result.err
    assert str(good) in lines[0] and str(other) in lines[1]


def test_a_memory_error_inside_the_network_run_becomes_input_error(tiny_model: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from afm_sr.infer import enhance, pipeline

    def no_memory(*args: object, **kwargs: object) -> None:
        raise MemoryError("Unable to allocate 1.0 GiB")

    monkeypatch.setattr(pipeline, "tiled_sr", no_memory)
    with pytest.raises(InputError, match=r"out of memory \(Unable to allocate 1.0 GiB\); use a smaller --tile"):
        enhance(surface(), 2, tiny_model, pixel_size=1e-8, device="cpu")


@pytest.mark.parametrize(("text", "nbytes"), [("512M", 512 << 20), ("4G", 4 << 30), ("1.5GiB", 3 << 29),
                                              ("2gb", 2 << 30), ("1e9", 10**9), (" 8 G ", 8 << 30)])
def test_sizes_parse(text: str, nbytes: int) -> None:
    assert budget.parse_size(text) == nbytes


@pytest.mark.parametrize("text", ["", "abc", "-1G", "8X", "nan", "inf", "100", "0.5K"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a size|under 1 MiB"):
        budget.parse_size(text)


def test_available_memory_is_read_from_the_system() -> None:
    assert 0 < budget.available_memory() < 1 << 50


def test_default_limit_is_half_the_available_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(budget.ENV, raising=False)
    monkeypatch.setattr(budget, "available_memory", lambda: 10 << 30)
    limit = budget.resolve_limit()
    assert limit.nbytes == 5 << 30 and "half of the 10.0 GiB available" in limit.origin


def test_a_bad_environment_value_is_one_clear_error(tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(budget.ENV, "lots")
    result = cli("info", write_npy(tmp_path / "scan.npy", surface()))
    assert result.code == 2 and error_lines(result.err) == [
        f"afm-sr: error: {tmp_path / 'scan.npy'}: memory limit (AFM_SR_MEMORY_LIMIT): 'lots' is not a size; give "
        "bytes with an optional K/M/G/T suffix, e.g. 8G"], result.err


def test_cli_memory_limit_option_is_checked_at_parsing(tmp_path: Path, cli: Cli) -> None:
    result = cli("info", tmp_path / "x.npy", "--memory-limit", "12")
    assert result.code == 2 and result.err.count("\n") == 1 and result.err.startswith(
        "afm-sr: error: argument --memory-limit: '12' is under 1 MiB"), result.err
