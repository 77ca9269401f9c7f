"""Where the real AFM sample files live (shared/afm-samples or $AFM_SR_SAMPLES); tests skip without them."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import SAMPLES


@pytest.fixture(scope="session")
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"real AFM samples not found at {SAMPLES} (set AFM_SR_SAMPLES)")
    return SAMPLES
