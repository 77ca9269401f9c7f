"""Round 3, legal but extreme numbers: heights far from zero with fine detail, femtometre heights, pixel sizes at the
limits of 1 pm .. 1 mm, integer inputs: every writer keeps the data (float64 where float32 would lose it) and the
enhancement keeps it too; nothing is lost silently."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from rel_support import CliResult, surface, write_npy

Cli = Callable[..., CliResult]
SUFFIXES = [".npy", ".tiff", ".txt", ".gwy"]


def _detail_kept(back: np.ndarray, data: np.ndarray) -> float:
    """Largest error of ``back`` relative to the data's detail (the std of neighbour differences along x)."""
    return float(np.abs(back - data).max() / np.diff(data, axis=1).std())


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("offset", [1e3, -1e3, 1.0, 1e-3])
def test_a_large_offset_with_nm_detail_survives_every_writer(tmp_path: Path, suffix: str, offset: float) -> None:
    from afm_sr.io import HeightMap, read, write

    data = offset + surface()  # a few nm of detail on 1 km, 1 m or 1 mm
    path = write(HeightMap(data, 1e-8), tmp_path / f"far{suffix}")
    assert _detail_kept(read(path, pixel_size=1e-8).data, data) < 0.01


@pytest.mark.parametrize("suffix", [".npy", ".tiff"])
def test_ordinary_scans_stay_float32(tmp_path: Path, suffix: str) -> None:
    """float64 only where needed: a few-um scan with pm detail (and afm-sr's own float32 output) stays float32."""
    from afm_sr.io import HeightMap, read, write

    rng = np.random.default_rng(1)
    data = 2e-6 * rng.random((64, 64)) + 1e-12 * rng.standard_normal((64, 64))
    path = write(HeightMap(data, 1e-8), tmp_path / f"plain{suffix}")
    again = write(read(path), tmp_path / f"again{suffix}")
    assert path.stat().st_size < 64 * 64 * 6 and again.stat().st_size < 64 * 64 * 6


@pytest.mark.parametrize("suffix", [".npy", ".tiff", ".txt"])
def test_enhance_of_a_scan_at_1_km_keeps_its_detail(tmp_path: Path, cli: Cli, tiny_model: Path, suffix: str) -> None:
    """The issue's example: ``enhance ... -o out.npy`` of heights at 1 km gave one single value."""
    from afm_sr.io import read

    near, far = write_npy(tmp_path / "near.npy", surface()), write_npy(tmp_path / "far.npy", 1e3 + surface())
    for src in (near, far):
        result = cli("enhance", src, "-o", tmp_path / f"out_{src.stem}{suffix}", "--scale", "2", "--model", tiny_model,
                     "--device", "cpu")
        assert result.code == 0, result.err
    reference = read(tmp_path / f"out_near{suffix}", pixel_size=1e-8).data
    assert _detail_kept(read(tmp_path / f"out_far{suffix}", pixel_size=1e-8).data - 1e3, reference) < 0.01


@pytest.mark.parametrize("scale", [1e-15, 1e-30, 1e30])
def test_tiny_and_huge_heights_round_trip_through_enhance(tmp_path: Path, tiny_model: Path, scale: float) -> None:
    from afm_sr.infer import enhance
    from afm_sr.io import HeightMap, read, write

    base = enhance(HeightMap(surface(), 1e-8), 2, tiny_model, device="cpu")
    out = enhance(HeightMap(surface() * (scale / 1e-9), 1e-8), 2, tiny_model, device="cpu")
    np.testing.assert_allclose(out.data / (scale / 1e-9), base.data, rtol=1e-4, atol=1e-6 * base.data.std())
    for suffix in SUFFIXES:
        back = read(write(out, tmp_path / f"o{suffix}", overwrite=True), pixel_size=1e-8).data
        assert _detail_kept(back, out.data) < 0.01, suffix


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("pixel", [1e-12, 1e-3, (1e-12, 1e-3), (1e-3, 1e-12)])
def test_pixel_sizes_at_the_limits_are_written_and_read(tmp_path: Path, suffix: str, pixel: object) -> None:
    """1 pm is 1e10 px/cm, past a TIFF resolution rational: the TIFF once failed to write at all."""
    from afm_sr.io import HeightMap, read, write

    path = write(HeightMap(surface(), pixel), tmp_path / f"px{suffix}")
    expected = (pixel, pixel) if isinstance(pixel, float) else pixel
    assert read(path).pixel_size == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int32, np.int64, np.uint64])
def test_integer_inputs_keep_every_count(tmp_path: Path, dtype: type) -> None:
    """Counts near 2**40 (beyond float32's 2**24) plus small steps read exactly and write back without loss."""
    from afm_sr.io import read, write

    counts = (surface() * 5e10).astype(dtype) if np.dtype(dtype).itemsize < 8 else \
        (surface() * 5e10 + 2**40).astype(dtype)
    np.save(tmp_path / "counts.npy", counts)
    hm = read(tmp_path / "counts.npy", pixel_size=1e-8, z_unit="nm")
    np.testing.assert_array_equal(hm.data, counts.astype(np.float64) * 1e-9)
    back = read(write(hm, tmp_path / "back.npy"), pixel_size=1e-8).data
    assert np.abs(back - hm.data).max() <= 0.01 * np.diff(hm.data, axis=1).std()
