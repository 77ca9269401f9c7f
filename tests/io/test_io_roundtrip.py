"""Write then read: .gwy/.tiff/.npy/.txt keep data (to float32 precision), scan size, channel and units."""

from __future__ import annotations

import json
from pathlib import Path

import gwyfile
import numpy as np
import pytest

import afm_sr.io as io
from afm_sr.errors import AFMFileError
from afm_sr.io import HeightMap


@pytest.fixture
def heightmap() -> HeightMap:
    rng = np.random.default_rng(1)
    data = rng.normal(0, 5e-9, (24, 32)) + np.linspace(0, 2e-8, 32)  # non-square, tilted, nm-scale
    return HeightMap(data, (7.8125e-9, 1.5e-8), channel="HeightRetrace")


@pytest.mark.parametrize("suffix", [".gwy", ".tiff", ".tif", ".npy", ".txt"])
def test_round_trip_keeps_data_size_and_units(tmp_path: Path, heightmap: HeightMap, suffix: str) -> None:
    path = io.write(heightmap, tmp_path / f"scan{suffix}")
    back = io.read(path)
    np.testing.assert_allclose(back.data, heightmap.data, rtol=1e-6, atol=1e-7 * np.abs(heightmap.data).max())
    assert back.shape == heightmap.shape
    np.testing.assert_allclose(back.scan_size, heightmap.scan_size, rtol=1e-9)
    assert back.z_unit == "m"
    assert back.channel == "HeightRetrace"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_gwy_has_what_gwyddion_needs_for_scale_bars(tmp_path: Path, heightmap: HeightMap) -> None:
    path = io.write(heightmap, tmp_path / "scan.gwy")
    field = gwyfile.load(str(path))["/0/data"]
    assert field["xreal"] == pytest.approx(32 * 7.8125e-9) and field["yreal"] == pytest.approx(24 * 1.5e-8)
    assert field["si_unit_xy"]["unitstr"] == "m" and field["si_unit_z"]["unitstr"] == "m"


def test_npy_writes_a_sidecar_with_the_pixel_size(tmp_path: Path, heightmap: HeightMap) -> None:
    io.write(heightmap, tmp_path / "scan.npy")
    side = json.loads((tmp_path / "scan.json").read_text())
    assert side["pixel_size_m"] == [7.8125e-9, 1.5e-8]
    assert np.load(tmp_path / "scan.npy").dtype == np.float32


def test_refuses_to_overwrite_unless_asked(tmp_path: Path, heightmap: HeightMap) -> None:
    path = io.write(heightmap, tmp_path / "scan.gwy")
    with pytest.raises(AFMFileError, match="exists"):
        io.write(heightmap, path)
    io.write(heightmap.with_data(heightmap.data * 2), path, overwrite=True)
    assert io.read(path).data.max() == pytest.approx(2 * heightmap.data.max())


def test_unwritable_suffix_and_missing_folder(tmp_path: Path, heightmap: HeightMap) -> None:
    with pytest.raises(AFMFileError, match="cannot write"):
        io.write(heightmap, tmp_path / "scan.ibw")
    with pytest.raises(AFMFileError, match="does not exist"):
        io.write(heightmap, tmp_path / "nowhere" / "scan.gwy")


def test_npy_pixel_size_from_index_csv(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.arange(16.0).reshape(4, 4) * 1e-9)
    header = "file,pixel_size_x_m,pixel_size_y_m,channel\n"
    (tmp_path / "index.csv").write_text(header + "a.npy,2e-9,3e-9,Height\n")
    hm = io.read(tmp_path / "a.npy")
    assert hm.pixel_size == (2e-9, 3e-9) and hm.channel == "Height"


def test_bare_npy_needs_a_pixel_size(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.arange(16.0).reshape(4, 4) * 1e-9)
    with pytest.raises(AFMFileError, match="pixel_size"):
        io.read(tmp_path / "a.npy")
    assert io.read(tmp_path / "a.npy", pixel_size=1e-8).pixel_size == (1e-8, 1e-8)


def test_npz_channels_and_pixel_size(tmp_path: Path) -> None:
    ramp = np.arange(16.0).reshape(4, 4)
    np.savez(tmp_path / "a.npz", Phase=ramp, Height=ramp * 1e-9, pixel_size_m=np.array([1e-8, 2e-8]))
    assert io.list_channels(tmp_path / "a.npz") == ["Phase", "Height"]
    hm = io.read(tmp_path / "a.npz", channel="height")
    assert hm.channel == "Height" and hm.pixel_size == (1e-8, 2e-8)


def test_text_matrix_with_user_units(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("1,2,3\n4,5,6\n")
    with pytest.raises(AFMFileError, match="z_unit"):
        io.read(tmp_path / "m.csv", pixel_size=1e-9)
    hm = io.read(tmp_path / "m.csv", pixel_size=1e-9, z_unit="nm")
    np.testing.assert_allclose(hm.data, [[1e-9, 2e-9, 3e-9], [4e-9, 5e-9, 6e-9]])
