"""Bone (mouse cortical bone-like): bundles of collagen fibrils with the ~67 nm D-band periodicity."""

from __future__ import annotations

import numpy as np

from afm_sr.materials._shapes import lognormal_sizes, meters_to_px
from afm_sr.materials.instrument import spectral_noise
from afm_sr.ranges import Range, draw


def generate(rng: np.random.Generator, n_px: int, pixel_size_m: float, *,
             fibril_width_m: Range, d_period_m: Range, d_band_depth_m: Range, fibril_relief: Range, waviness: Range,
             crossing: Range, mineral_roughness_m: Range) -> np.ndarray:
    """Generate collagen fibril bundles in meters, shape (n_px, n_px).

    Each ``Range`` parameter is a fixed value or a [lo, hi] range drawn once per image; the ranges training
    draws from are written once, in ``conf/material/bone.yaml``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random source (parameters and geometry are drawn from it).
    n_px : int
        Image side in pixels.
    pixel_size_m : float
        Pixel size in meters.
    fibril_width_m : Range
        Median fibril diameter (at least 3 px).
    d_period_m : Range
        Axial D-band period (gap/overlap zones), 67 nm in hydrated and ~64 nm in dried collagen.
    d_band_depth_m : Range
        Depth of the gap zones.
    fibril_relief : Range
        Height of a fibril's rounded cross-section, as a fraction of its width.
    waviness : Range
        Lateral undulation of the bundle, in fibril widths.
    crossing : Range
        Area share of a second bundle crossing the first at another angle.
    mineral_roughness_m : Range
        RMS of the fine mineral roughness.
    """
    width = max(meters_to_px(rng, fibril_width_m, pixel_size_m), 3.0)
    period = max(meters_to_px(rng, d_period_m, pixel_size_m), 2.5)
    params = (width, period, draw(rng.random, d_band_depth_m) / pixel_size_m, draw(rng.random, fibril_relief),
              draw(rng.random, waviness))
    angle = rng.uniform(0, np.pi)
    h = _bundle(rng, n_px, angle, *params)
    share = draw(rng.random, crossing)
    if share > 0:
        other = _bundle(rng, n_px, angle + rng.uniform(np.pi / 6, np.pi / 2), *params) + width * params[3]
        mask = spectral_noise(rng, (n_px, n_px), exponent=4.0) > np.quantile(
            spectral_noise(rng, (n_px, n_px), exponent=0.0), 1 - share)
        h = np.where(mask, other, h)
    h = h * pixel_size_m
    return h + draw(rng.random, mineral_roughness_m) * spectral_noise(rng, (n_px, n_px), exponent=1.5)


def _bundle(rng: np.random.Generator, n_px: int, angle: float, width: float, period: float, depth: float,
            relief: float, waviness: float) -> np.ndarray:
    """Parallel fibrils of varied width along ``angle``, undulating, each with its own D-band phase (px)."""
    r, c = np.mgrid[0:n_px, 0:n_px].astype(np.float64) - n_px / 2
    along = c * np.cos(angle) + r * np.sin(angle)
    across = -c * np.sin(angle) + r * np.cos(angle)
    extent = int(np.ceil(n_px * 0.75)) + 1
    s_axis = np.arange(-extent, extent + 1, dtype=np.float64)
    wave = waviness * width * spectral_noise(rng, (len(s_axis),), exponent=4.0)
    across = across + np.interp(along, s_axis, wave)
    widths = lognormal_sizes(rng, int(4 * extent / width) + 2, width, 0.3)
    edges = np.cumsum(widths) - extent - rng.uniform(0, width)
    lane = np.clip(np.searchsorted(edges, across), 1, len(edges) - 1)
    w = widths[lane]
    t = (across - edges[lane - 1]) / w
    profile = relief * w * np.sqrt(np.clip(1 - (2 * t - 1) ** 2, 0, None))
    phase = rng.uniform(0, 2 * np.pi, len(edges))[lane]
    band = depth * 0.5 * (np.tanh(3 * np.cos(2 * np.pi * along / period + phase)) - 1)
    level = rng.normal(0, 0.3 * relief * width, len(edges))[lane]
    return profile + band + level
