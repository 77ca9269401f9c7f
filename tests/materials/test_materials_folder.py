"""FolderMaterial reads a folder through afm_sr.io, levels each map and isolates files that fail."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

import afm_sr.io as io
from afm_sr.errors import AFMFileError
from afm_sr.io import HeightMap
from afm_sr.materials.folder import FolderMaterial


def _tilted(seed: int) -> HeightMap:
    yy, xx = np.mgrid[0:16, 0:16]
    bumps = np.random.default_rng(seed).normal(0, 1e-10, (16, 16))
    return HeightMap(1e-9 * (3 * xx + 2 * yy) + bumps, (1e-8, 1e-8))


def test_reads_levels_and_skips_bad_files(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    io.write(_tilted(0), tmp_path / "a.gwy")
    io.write(_tilted(1), tmp_path / "b.npy")
    (tmp_path / "c.ibw").write_bytes(b"broken")
    with caplog.at_level(logging.WARNING):
        maps = FolderMaterial("real", str(tmp_path)).load()
    assert len(maps) == 2  # b.json (the sidecar) is not taken for a scan
    assert all(abs(hm.data.mean()) < 1e-12 and np.ptp(hm.data) < 1e-9 for hm in maps)  # plane removed
    assert "c.ibw" in caplog.text


def test_glob_limit_and_no_leveling(tmp_path: Path) -> None:
    for i in range(3):
        io.write(_tilted(i), tmp_path / f"s{i}.gwy")
    maps = FolderMaterial("real", str(tmp_path), glob="*.gwy", level_plane=False, limit=2).load()
    assert len(maps) == 2 and np.ptp(maps[0].data) > 5e-8


def test_nothing_readable_raises(tmp_path: Path) -> None:
    (tmp_path / "x.gwy").write_bytes(b"nope")
    with pytest.raises(AFMFileError, match="none of 1 files"):
        FolderMaterial("real", str(tmp_path)).load()
    with pytest.raises(AFMFileError, match="does not exist"):
        FolderMaterial("real", str(tmp_path / "missing")).load()


def test_real_training_folder(shared_train: Path) -> None:
    maps = FolderMaterial("afm_train", str(shared_train), glob="*.npy", limit=3).load()
    assert len(maps) == 3 and all(hm.pixel_size[0] > 0 and hm.z_unit == "m" for hm in maps)


def test_fallback_pixel_size_and_groups(tmp_path: Path) -> None:
    np.save(tmp_path / "bare.npy", _tilted(0).data)  # no sidecar, no index.csv: no pixel size stored
    (tmp_path / "index.csv").write_text(
        "file,pixel_size_x_m,pixel_size_y_m,channel,notes\n"
        "r1.npy,2e-8,2e-8,Height,\"rescan; group=areaA\"\nr2.npy,2e-8,2e-8,Height,group=areaA\n")
    for name in ("r1.npy", "r2.npy"):
        np.save(tmp_path / name, _tilted(1).data)
    with pytest.raises(AFMFileError):
        FolderMaterial("real", str(tmp_path), glob="bare.npy").load()
    bare = FolderMaterial("real", str(tmp_path), glob="bare.npy", pixel_size=5e-9).load()
    assert bare[0].pixel_size == (5e-9, 5e-9) and bare[0].metadata["group"] == "bare"
    rescans = FolderMaterial("real", str(tmp_path), glob="r*.npy").load()
    assert [hm.metadata["group"] for hm in rescans] == ["areaA", "areaA"]
    assert rescans[0].pixel_size == (2e-8, 2e-8)


def test_real_training_groups(shared_train: Path) -> None:
    maps = FolderMaterial("afm_train", str(shared_train), glob="afmdataconv__*.npy", pixel_size=1e-8).load()
    assert sum(hm.metadata["group"] == "afmdataconv_TS21" for hm in maps) == 10
