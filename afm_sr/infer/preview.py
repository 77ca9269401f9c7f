"""The side-by-side preview PNG of one enhanced scan: input | bicubic | afm-sr on one colour scale."""

from __future__ import annotations

from pathlib import Path

from afm_sr.infer.pipeline import bicubic_upscale
from afm_sr.io import HeightMap
from afm_sr.preprocess import level
from afm_sr.report.figures import comparison_panel, save_png

#: Display factor and label per height unit (heights are shown in nm, like Gwyddion does for AFM).
_DISPLAY = {"m": (1e9, "nm")}


def save_preview(original: HeightMap, enhanced: HeightMap, path: str | Path, title: str = "",
                 level_plane: bool = False) -> Path:
    """Write input | bicubic | afm-sr in nm with a scale bar and a mid-height cross-section, atomically.

    ``level_plane`` levels the input as ``enhance`` did, so all three share one colour scale.
    """
    if level_plane:
        original = original.with_data(level(original.data))
    scale = round(enhanced.shape[1] / original.shape[1])
    factor, unit = _DISPLAY.get(original.z_unit, (1.0, original.z_unit))
    name = f"input {original.shape[1]}x{original.shape[0]}"
    images = {name: original.data * factor,
              f"bicubic x{scale}": bicubic_upscale(original, scale).data * factor,
              f"afm-sr x{scale}": enhanced.data * factor}
    scan_size = None if original.metadata.get("pixel_size_unknown") else original.scan_size[0]
    fig = comparison_panel(images, scan_size_m=scan_size, unit=unit, title=title, row=original.shape[0] // 2,
                           reference=name)
    return save_png(fig, path)
