"""Shared test fixtures: offline W&B, paths to the repo and to the team's shared real data."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
if "AFM_SR_CACHE" not in os.environ:  # this session's prepared-image cache, removed at exit
    os.environ["AFM_SR_CACHE"] = tempfile.mkdtemp(prefix="afm-sr-cache-")
    atexit.register(shutil.rmtree, os.environ["AFM_SR_CACHE"], True)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AFM_SR_SHARED", REPO.parent / "shared"))


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def shared_train() -> Path:
    path = SHARED / "afm-train"
    if not (path / "index.csv").is_file():
        pytest.skip(f"real training maps not found at {path} (set AFM_SR_SHARED)")
    return path


@pytest.fixture(autouse=True)
def _adapt_only_where_asked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Enhance without the x2 default adaptation unless a test asks (``adapt=True``) or is marked
    ``default_adaptation``: the default's own behaviour is tested in test_adapt.py, and elsewhere it would only
    add its steps to every x2 call (subprocess tests still get the real default)."""
    if request.node.get_closest_marker("default_adaptation") is None:
        import afm_sr.infer.adapt as adapt

        monkeypatch.setattr(adapt, "ADAPT_BY_DEFAULT", dict.fromkeys(adapt.ADAPT_BY_DEFAULT, False))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
