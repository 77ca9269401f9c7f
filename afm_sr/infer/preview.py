"""The side-by-side preview PNG of one enhanced scan: input | bicubic | afm-sr on one colour scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from afm_sr.errors import InputError
from afm_sr.infer.pipeline import bicubic_upscale
from afm_sr.io import HeightMap
from afm_sr.preprocess import level

#: Display factor and label per height unit (heights are shown in nm, like Gwyddion does for AFM).
_DISPLAY = {"m": (1e9, "nm")}


#: Side of the zoomed window in output pixels (at most half the image).
ZOOM_PX = 96


def most_different(a: np.ndarray, b: np.ndarray, side: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """The ``side``-pixel window (clipped to half the image) where ``a`` and ``b`` differ most (sum of squares).

    Returned as ((y0, y1), (x0, x1)) fractions of the image, so every image of a panel can cut the same area.
    """
    diff = (np.asarray(a, dtype=np.float64) - b) ** 2
    h, w = (max(1, min(side, n // 2)) for n in diff.shape)
    sums = np.pad(diff.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    boxes = sums[h:, w:] - sums[:-h, w:] - sums[h:, :-w] + sums[:-h, :-w]
    y, x = np.unravel_index(int(np.argmax(boxes)), boxes.shape)
    return ((y / diff.shape[0], (y + h) / diff.shape[0]), (x / diff.shape[1], (x + w) / diff.shape[1]))


def save_preview(original: HeightMap, enhanced: HeightMap, path: str | Path, title: str = "",
                 level_plane: bool = False) -> Path:
    """Write input | bicubic | afm-sr in nm with a scale bar, a mid-height cross-section and zoomed crops, atomically.

    ``enhanced`` is what ``enhance`` returned for ``original``: its ``afm_sr_scale`` metadata names the scale.
    ``level_plane`` levels the input as ``enhance`` did, so all three share one colour scale. The crops show, at
    full output resolution, the window where bicubic and afm-sr differ most; the title carries the self-check
    estimate where ``enhanced`` has one (``afm_sr_estimated_gain_db``).
    """
    from afm_sr.report.figures import comparison_panel, save_png  # matplotlib: only when a PNG is written

    if level_plane:
        original = original.with_data(level(original.data))
    if "afm_sr_scale" not in enhanced.metadata:
        raise InputError("the preview needs what afm_sr.enhance returned (its metadata names the scale); "
                         "this map has no 'afm_sr_scale'")
    scale = int(enhanced.metadata["afm_sr_scale"])
    factor, unit = _DISPLAY.get(original.z_unit, (1.0, original.z_unit))
    name = f"input {original.shape[1]}x{original.shape[0]}"
    bicubic = bicubic_upscale(original, scale).data * factor
    images = {name: original.data * factor, f"bicubic x{scale}": bicubic, f"afm-sr x{scale}": enhanced.data * factor}
    scan_size = None if original.metadata.get("pixel_size_unknown") else original.scan_size[0]
    gain = enhanced.metadata.get("afm_sr_estimated_gain_db")
    if gain is not None:
        used = enhanced.metadata.get("afm_sr_model_used", "base")
        pairs = enhanced.metadata.get("afm_sr_self_check_pairs", "bicubic")
        title = (f"{title}\nself-check: {gain:+.2f} dB over bicubic on the scan's own {pairs} pairs "
                 f"({used} model)").strip()
    fig = comparison_panel(images, scan_size_m=scan_size, unit=unit, title=title, row=original.shape[0] // 2,
                           reference=name, zoom=most_different(bicubic, images[f"afm-sr x{scale}"], ZOOM_PX))
    return save_png(fig, path)
