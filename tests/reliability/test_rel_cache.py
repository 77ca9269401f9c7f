"""The prepared-image cache and validation data gone bad (issue 24, class 2): a flipped bit in index.json or a bad
sector in the arrays is found on load and the entry rebuilt with a warning naming it; a file that was unreadable
when an entry was built is used once it reads; NaN validation metrics stop the run instead of choosing best.ckpt
on them; a read-only cache and two runs sharing one keep training on the right images."""

from __future__ import annotations

import errno
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from rel_support import TINY, CliResult, error_lines, surface, write_npy
from support import assert_same_images

import afm_sr.data.cache as cache_module
import afm_sr.materials.folder as folder_module
from afm_sr.data import AFMDataModule
from afm_sr.data.datasets import ImageDataset
from afm_sr.degrade import BicubicDegradation
from afm_sr.errors import AFMFileError
from afm_sr.materials.folder import FolderMaterial


def _scans(tmp_path: Path, n: int = 8) -> Path:
    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(n):
        write_npy(folder / f"scan{i}.npy", surface(seed=i))
    return folder


def _setup(folder: Path, cache: Path | None) -> AFMDataModule:
    dm = AFMDataModule({"mine": FolderMaterial("mine", str(folder))}, BicubicDegradation(), patch_size=24,
                       batch_size=4, patches_per_epoch=8, split=(0.5, 0.25, 0.25),
                       cache_dir=None if cache is None else str(cache))
    dm.setup("fit")
    return dm


def _entry(cache: Path) -> Path:
    (entry,) = (p for p in cache.iterdir() if not p.name.startswith("."))
    return entry


def test_bit_flip_in_index_is_found_and_the_entry_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder, cache = _scans(tmp_path), tmp_path / "cache"
    _setup(folder, cache)
    index = _entry(cache) / "index.json"
    text = index.read_text()
    where = re.search(r'"in2": \[(\d+)', text).end() - 1  # an offset into arrays.f32: misaligned arrays
    index.write_text(text[:where] + chr(ord(text[where]) ^ 1) + text[where + 1:])
    with caplog.at_level(logging.WARNING):
        again = _setup(folder, cache)
    assert f"cache entry {_entry(cache)} is corrupt: index.json" in caplog.text
    assert_same_images(_setup(folder, None), again)


def test_bad_sector_in_the_arrays_is_found_naming_the_image(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder, cache = _scans(tmp_path), tmp_path / "cache"
    _setup(folder, cache)
    arrays = _entry(cache) / "arrays.f32"
    raw = bytearray(arrays.read_bytes())
    raw[4096:8192] = b"\xff" * 4096  # a 4 KiB sector of NaNs
    arrays.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING):
        again = _setup(folder, cache)
    assert re.search(r"is corrupt: the arrays of image 'scan\d\.npy' do not match their checksum", caplog.text)
    assert_same_images(_setup(folder, None), again)
    assert all(torch.isfinite(im.hr).all() for images in again.images.values() for im in images)


def test_file_unreadable_when_the_entry_was_built_is_used_once_readable(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """chmod changes neither name, size nor mtime: the entry must not keep the file out for good."""
    folder, cache = _scans(tmp_path), tmp_path / "cache"
    read = folder_module.read

    def locked(path: Path, **kwargs: object) -> object:
        if path.name == "scan3.npy":
            raise AFMFileError(path, "cannot be read (Permission denied)")
        return read(path, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(folder_module, "read", locked)
        first = _setup(folder, cache)
    assert "scan3.npy" not in [im.name for images in first.images.values() for im in images]
    again = _setup(folder, cache)
    assert "scan3.npy" in [im.name for images in again.images.values() for im in images]
    assert_same_images(_setup(folder, None), again)
    hit = _setup(folder, cache)  # and from now on the rebuilt entry is used
    assert_same_images(again, hit)


def test_corrupt_entry_on_a_read_only_cache_trains_on_fresh_images(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    folder, cache = _scans(tmp_path), tmp_path / "cache"
    _setup(folder, cache)
    arrays = _entry(cache) / "arrays.f32"
    raw = bytearray(arrays.read_bytes())
    raw[100] ^= 1
    arrays.write_bytes(bytes(raw))

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(cache_module.shutil, "rmtree", lambda *a, **k: None)  # nothing can be removed either
    monkeypatch.setattr(cache_module, "temp_folder", read_only)
    with caplog.at_level(logging.WARNING):
        dm = _setup(folder, cache)
    assert "is corrupt" in caplog.text and "could not write the cache" in caplog.text
    assert_same_images(_setup(folder, None), dm)


def test_two_runs_sharing_a_cache(tmp_path: Path) -> None:
    """Two data modules preparing one folder into one cache at once: both get the images, one entry stays."""
    folder, cache = _scans(tmp_path), tmp_path / "cache"
    results: list[AFMDataModule | BaseException] = []

    def run() -> None:
        try:
            results.append(_setup(folder, cache))
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    fresh = _setup(folder, None)
    assert len(results) == 2
    for dm in results:
        assert isinstance(dm, AFMDataModule), dm
        assert_same_images(fresh, dm)
    assert len([p for p in cache.iterdir()]) == 1
    assert_same_images(fresh, _setup(folder, cache))


def test_nan_validation_metrics_stop_the_run_without_a_best_checkpoint(
        tmp_path: Path, task: Callable[[str, list[str], Path], CliResult], monkeypatch: pytest.MonkeyPatch) -> None:
    """A validation image that reads as NaN (a bad sector) must not give exit 0 and a best.ckpt chosen on NaN."""
    item = ImageDataset.__getitem__

    def bad_sector(self: ImageDataset, index: int) -> dict:
        out = dict(item(self, index))
        if self.items[index][0] == 0:
            out["target"] = out["target"].clone()
            out["target"][..., :4, :] = float("nan")
        return out

    monkeypatch.setattr(ImageDataset, "__getitem__", bad_sector)
    res = task("train.py", [*TINY, "test=false"], tmp_path / "r")
    assert res.code == 2, res.err[-3000:]
    (line,) = error_lines(res.err)
    assert "validation metrics at x2 are NaN for 1 image(s)" in line
    assert not (tmp_path / "r" / "checkpoints" / "best.ckpt").exists()
