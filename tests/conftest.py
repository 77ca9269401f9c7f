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


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
