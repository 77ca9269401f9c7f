"""Messy training folders (``dataset=folder``): a bad scan is skipped with a warning naming it and the reason, a
summary of what was used and skipped is logged once, ``dataset.strict=true`` makes it one error naming the file,
and a folder where nothing can be used is one clear error (issue 24, class 4)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from rel_support import TINY, CliResult, error_lines, surface, write_npy

from afm_sr.data import AFMDataModule
from afm_sr.degrade import BicubicDegradation
from afm_sr.errors import AFMFileError, InputError
from afm_sr.materials.folder import FolderMaterial

#: name -> (heights, what the warning must say); each is one bad scan among good ones
BAD = {
    "zeros.npy": (np.zeros((64, 64)), "constant"),
    "tiny.npy": (surface(3, 3), "3x3 px is too small"),
    "holes.npy": (np.where(np.eye(64, dtype=bool), np.nan, surface(seed=5)), "NaN"),
    "flat.npy": (np.full((64, 64), 2e-6), "constant"),  # constant before leveling: leveled, it is rounding noise
    "float32.npy": (np.float32(2e-6) + np.float32(2e-6) * np.finfo(np.float32).eps
                    * np.random.default_rng(1).integers(0, 2, (64, 64)).astype(np.float32), "rounding noise"),
}


def _folder(tmp_path: Path, *bad: str, good: int = 6) -> Path:
    """``good`` usable scans and the named bad ones, as .npy files with their pixel sizes."""
    folder = tmp_path / "scans"
    folder.mkdir(exist_ok=True)
    for i in range(good):
        write_npy(folder / f"good{i}.npy", surface(seed=i))
    for name in bad:
        write_npy(folder / name, BAD[name][0])
    return folder


def _setup(folder: Path, strict: bool = False, cache: Path | None = None) -> AFMDataModule:
    dm = AFMDataModule({"mine": FolderMaterial("mine", str(folder))}, BicubicDegradation(), patch_size=24,
                       batch_size=4, patches_per_epoch=8, split=(0.5, 0.25, 0.25),
                       cache_dir=None if cache is None else str(cache), **({"strict": True} if strict else {}))
    dm.setup("fit")
    return dm


def _used(dm: AFMDataModule) -> list[str]:
    return sorted(im.name for images in dm.images.values() for im in images)


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_scan_is_skipped_naming_it_and_the_reason(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                       name: str) -> None:
    folder = _folder(tmp_path, name)
    with caplog.at_level(logging.INFO, logger="afm_sr"):
        dm = _setup(folder)
    assert _used(dm) == [f"good{i}.npy" for i in range(6)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and name in r.getMessage()]
    assert any(BAD[name][1] in w for w in warnings), caplog.text
    summaries = [r.getMessage() for r in caplog.records if "using 6 images, skipped 1" in r.getMessage()]
    assert len(summaries) == 1 and name in summaries[0], caplog.text


def test_broken_symlink_is_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = _folder(tmp_path)
    os.symlink(tmp_path / "gone.npy", folder / "link.npy")
    with caplog.at_level(logging.WARNING, logger="afm_sr"):
        dm = _setup(folder)
    assert "link.npy" not in _used(dm)
    assert any("link.npy" in r.getMessage() and "broken symbolic link" in r.getMessage() for r in caplog.records)


def test_strict_makes_a_bad_scan_one_error_naming_it(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "zeros.npy")
    with pytest.raises(InputError, match=r"zeros\.npy.*constant.*dataset\.strict"):
        _setup(folder, strict=True)


def test_strict_holds_on_a_cache_hit(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "tiny.npy")
    _setup(folder, cache=tmp_path / "cache")
    with pytest.raises(InputError, match=r"tiny\.npy.*too small.*dataset\.strict"):
        _setup(folder, strict=True, cache=tmp_path / "cache")


def test_every_file_skipped_is_one_clear_error(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "zeros.npy", "flat.npy", "tiny.npy", good=0)
    with pytest.raises((AFMFileError, InputError), match=r"(none of|every).*(zeros|flat|tiny)\.npy"):
        _setup(folder)


def test_strict_option_through_train_py(tmp_path: Path, task: Callable[[str, list[str], Path], CliResult]) -> None:
    """``dataset=folder dataset.strict=true``: one ``afm-sr: error:`` line naming the file, exit 2."""
    folder = _folder(tmp_path, "zeros.npy")
    args = [*[a for a in TINY if "ceramic" not in a and not a.startswith("dataset=")], "dataset=folder",
            f"dataset.materials.mine.path={folder}", "dataset.cache_dir=null", "test=false"]
    res = task("train.py", [*args, "dataset.strict=true"], tmp_path / "strict")
    assert res.code == 2 and len(error_lines(res.err)) == 1, res.err[-3000:]
    assert "zeros.npy" in error_lines(res.err)[0] and "constant" in error_lines(res.err)[0]
    res = task("train.py", args, tmp_path / "lenient")
    assert res.code == 0, res.err[-3000:]
    assert "skipping" in res.out and "zeros.npy" in res.out
