"""ImagePanel shows validation/test images in nm over the real scan size, not in network units."""

from __future__ import annotations

import numpy as np
import pytest
from torch.utils.data import default_collate

from afm_sr.callbacks import ImagePanel
from afm_sr.data import ImageDataset, prepare
from afm_sr.degrade import BicubicDegradation
from afm_sr.io import HeightMap


def test_panel_images_are_heights_in_nm_over_the_scan_size(rng: np.random.Generator) -> None:
    heights = 5e-9 * rng.normal(size=(64, 48)) + 2e-8  # meters, offset so a z-score would be far off
    prepared = prepare(HeightMap(heights, (3e-9, 2e-9)), [2], BicubicDegradation(), seed=0)
    batch = default_collate([ImageDataset([prepared], [2])[0]])
    panel = ImagePanel()
    panel._capture({"pred": batch["input"]}, batch)
    stats = prepared.stats
    expected_nm = np.clip(heights, stats.lo, stats.hi) * 1e9
    assert panel.examples[2]["HR"] == pytest.approx(expected_nm, abs=1e-3)
    assert panel.widths[2] == pytest.approx(48 * 3e-9)
    fig = panel._figures("test")[2]
    assert fig.axes[-1].get_ylabel() == "nm" or any(ax.get_ylabel() == "nm" for ax in fig.axes)
