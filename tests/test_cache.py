"""The prepared-image cache: same tensors as without it, no re-parsing on a hit, rebuilt on any change."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from support import assert_same_images

import afm_sr.io as io
from afm_sr.data import AFMDataModule
from afm_sr.data.cache import cache_key
from afm_sr.degrade import BicubicDegradation, MixedDegradation, ScanDegradation
from afm_sr.io import HeightMap
from afm_sr.materials.folder import FolderMaterial


def _scans(folder: Path, n: int = 8) -> None:
    """``n`` rough 64 px maps in two formats, with their pixel sizes."""
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(n):
        hm = HeightMap(np.cumsum(rng.normal(0, 1e-10, (64, 64)), axis=1), (1e-8 * (i + 1), 1e-8 * (i + 1)))
        io.write(hm, folder / f"scan{i}.{'gwy' if i % 2 else 'npy'}")


def _module(folder: Path, cache: Path | None, degradation: object = None) -> AFMDataModule:
    dm = AFMDataModule({"real": FolderMaterial("real", str(folder))}, degradation or ScanDegradation(),
                       patch_size=24, batch_size=4, patches_per_epoch=8, split=(0.5, 0.25, 0.25),
                       cache_dir=None if cache is None else str(cache))
    dm.setup("fit")
    return dm


def test_cached_images_equal_fresh_ones_and_skip_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _scans(tmp_path / "scans")
    fresh = _module(tmp_path / "scans", None)
    first = _module(tmp_path / "scans", tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 1
    assert_same_images(fresh, first)

    def no_reading(self: FolderMaterial) -> list:
        raise AssertionError("a cache hit must not read the instrument files")

    monkeypatch.setattr(FolderMaterial, "load", no_reading)
    second = _module(tmp_path / "scans", tmp_path / "cache")
    assert_same_images(fresh, second)
    batch = next(iter(second.train_dataloader()))
    assert batch["input"].shape == (4, 1, 24, 24) and torch.isfinite(batch["input"]).all()


def test_any_change_rebuilds(tmp_path: Path) -> None:
    _scans(tmp_path / "scans")
    cache = tmp_path / "cache"
    _module(tmp_path / "scans", cache)
    stamp = (tmp_path / "scans" / "scan0.npy").stat().st_mtime_ns + 10**9
    os.utime(tmp_path / "scans" / "scan0.npy", ns=(stamp, stamp))  # same bytes, touched
    _module(tmp_path / "scans", cache)
    _module(tmp_path / "scans", cache, BicubicDegradation())
    assert len(list(cache.iterdir())) == 3


def test_key_describes_config_not_object_identity() -> None:
    assert cache_key(ScanDegradation()) == cache_key(ScanDegradation())
    assert cache_key(ScanDegradation()) != cache_key(ScanDegradation(drift_px=2.0))
    mixed = MixedDegradation([BicubicDegradation(), ScanDegradation()], [1, 3])
    assert cache_key(mixed) == cache_key(MixedDegradation([BicubicDegradation(), ScanDegradation()], [1, 3]))
    assert cache_key(mixed) != cache_key(MixedDegradation([BicubicDegradation(), ScanDegradation()], [3, 1]))


def test_truncated_entry_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _scans(tmp_path / "scans")
    _module(tmp_path / "scans", tmp_path / "cache")
    fresh = _module(tmp_path / "scans", None)  # not mapped: the file is cut in place below
    (arrays,) = (tmp_path / "cache").glob("*/arrays.f32")
    arrays.write_bytes(arrays.read_bytes()[:1000])
    with caplog.at_level(logging.WARNING):
        again = _module(tmp_path / "scans", tmp_path / "cache")
    assert "truncated" in caplog.text
    assert_same_images(fresh, again)
    assert arrays.stat().st_size > 1000


def test_unwritable_cache_warns_and_trains(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _scans(tmp_path / "scans")
    (tmp_path / "afile").write_text("not a folder")
    with caplog.at_level(logging.WARNING):
        dm = _module(tmp_path / "scans", tmp_path / "afile" / "cache")
    assert "could not write the cache" in caplog.text
    assert_same_images(_module(tmp_path / "scans", None), dm)


@pytest.mark.skipif(os.name != "posix", reason="stale temp folders are found by flock, which only POSIX has")
def test_temp_folders_of_killed_runs_are_swept_live_ones_kept(tmp_path: Path) -> None:
    import fcntl

    cache = tmp_path / "cache"
    cache.mkdir()
    stale, live = cache / ".scans-0123.0123456789ab.tmp", cache / ".scans-4567.ba9876543210.tmp"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "arrays.f32").write_bytes(b"\0" * 64)
        (folder / ".lock").touch()
    fd = os.open(live / ".lock", os.O_RDONLY)  # a writer still at work holds its lock
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _scans(tmp_path / "scans")
        _module(tmp_path / "scans", cache)
        assert not stale.exists() and live.is_dir()
        assert [p.name for p in cache.iterdir() if p.name.endswith(".tmp")] == [live.name]
    finally:
        os.close(fd)
