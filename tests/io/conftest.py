"""Where the real AFM sample files live (shared/afm-samples or $AFM_SR_SAMPLES); tests skip without them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def samples_dir() -> Path:
    """The folder of real sample files (it may not exist)."""
    return Path(os.environ.get("AFM_SR_SAMPLES", REPO / ".." / "shared" / "afm-samples"))


@pytest.fixture(scope="session")
def samples() -> Path:
    folder = samples_dir()
    if not folder.is_dir():
        pytest.skip(f"real AFM samples not found at {folder} (set AFM_SR_SAMPLES)")
    return folder
