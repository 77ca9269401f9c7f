"""The extra real-data set (issue 21): its config options without the folder, and experiments/data/build_extra.py."""

from __future__ import annotations

import csv
import functools
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hydra.utils import instantiate
from support import REPO, compose_config, run_script

from afm_sr.errors import AFMFileError

SCRIPT = "experiments/data/build_extra.py"
TRAIN_INDEX = REPO.parent / "shared" / "afm-train" / "index.csv"


@functools.cache
def _build_extra() -> ModuleType:
    """The build script as a module (it lives in experiments/, outside the package)."""
    spec = importlib.util.spec_from_file_location("build_extra", REPO / SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_multi_real_extra_adds_afm_extra_to_multi_real(monkeypatch, tmp_path):
    monkeypatch.setenv("AFM_SR_EXTRA", str(tmp_path / "extra"))
    extra = compose_config(["dataset=multi_real_extra"]).dataset.materials
    assert set(extra) == set(compose_config(["dataset=multi_real"]).dataset.materials) | {"afm_extra"}
    assert extra.afm_extra.path == str(tmp_path / "extra") and extra.afm_extra.glob == "*.npy"


def test_afm_extra_defaults_to_home_data(monkeypatch, tmp_path):
    monkeypatch.delenv("AFM_SR_EXTRA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    node = compose_config(["dataset=multi_real_extra"]).dataset.materials.afm_extra
    assert Path(node.path) == tmp_path / "data" / "afm-extra"


def test_a_missing_afm_extra_folder_is_one_error_naming_it_and_the_build_script(monkeypatch, tmp_path):
    monkeypatch.setenv("AFM_SR_EXTRA", str(tmp_path / "absent"))
    material = instantiate(compose_config(["dataset=multi_real_extra"]).dataset.materials.afm_extra)
    with pytest.raises(AFMFileError) as err:
        material.load()
    message = str(err.value)
    assert str(tmp_path / "absent") in message and "build_extra.py" in message and "\n" not in message


def test_the_build_stops_with_one_line_naming_the_missing_mirror(tmp_path):
    res = run_script(SCRIPT, ["--mirrors", str(tmp_path / "mirrors"), "--out", str(tmp_path / "out")], tmp_path)
    first = _build_extra().SOURCES[0]
    assert res.returncode != 0 and not (tmp_path / "out").exists()
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("afm-sr: error:"), res.stderr
    assert first.repo in lines[0] and f"fetch github:{first.repo}" in lines[0]


def test_copies_are_found_through_flips_scale_and_offset():
    b = _build_extra()
    rng = np.random.default_rng(0)
    z = rng.normal(size=(70, 90)).cumsum(axis=1)
    copy = 1e-9 * z.T[::-1] + 3e-7  # re-exported: transposed, flipped, in other units, offset
    other = rng.normal(size=(70, 90)).cumsum(axis=1)
    assert b.correlation(b.levelled(copy), b.levelled(z)) > b.SAME
    assert b.correlation(b.levelled(other), b.levelled(z)) < b.RESCAN


def test_unscanned_edge_lines_are_cropped_and_small_or_flat_maps_refused():
    b = _build_extra()
    z = np.random.default_rng(1).normal(size=(100, 80))
    z[90:] = 0.0  # an unfinished scan: the last lines never recorded
    crop, note = b.usable(z)
    assert crop.shape == (90, 80) and "(100, 80) -> (90, 80)" in note
    assert b.usable(z[:60]) is None and b.usable(np.ones((100, 100))) is None


@pytest.fixture()
def extra_folder() -> Path:
    """The built folder (~/data/afm-extra or $AFM_SR_EXTRA); skip where it has not been built."""
    folder = Path(os.environ.get("AFM_SR_EXTRA", Path.home() / "data" / "afm-extra"))
    if not (folder / "index.csv").is_file() or not TRAIN_INDEX.is_file():
        pytest.skip(f"no built afm-extra at {folder} (python {SCRIPT}) or no shared/afm-train to compare with")
    return folder


def test_the_built_folder_has_afm_train_s_format(extra_folder):
    with open(TRAIN_INDEX) as f:
        columns = next(csv.reader(f))
    with open(extra_folder / "index.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and list(rows[0]) == columns
    assert sorted(r["file"] for r in rows) == sorted(p.name for p in extra_folder.glob("*.npy"))
    for r in rows:
        z = np.load(extra_folder / r["file"], mmap_mode="r")
        assert z.dtype == np.float32 and z.shape == (int(r["ny"]), int(r["nx"])) and min(z.shape) >= 64
        assert float(r["pixel_size_x_m"]) > 0 and (extra_folder / "LICENSES").is_dir()
