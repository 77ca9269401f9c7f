"""Abalone shell nacre: polygonal aragonite tablets in terraces, organic-matrix grooves, nano-asperities."""

from __future__ import annotations

import numpy as np

from afm_sr.materials._shapes import grains, meters_to_px
from afm_sr.materials.instrument import spectral_noise
from afm_sr.ranges import Range, draw


def generate(rng: np.random.Generator, n_px: int, pixel_size_m: float, *,
             tablet_size_m: Range, tablet_thickness_m: Range, terraces: Range, tablet_tilt: Range,
             groove_depth_m: Range, groove_width_m: Range, asperity_size_m: Range,
             asperity_height_m: Range) -> np.ndarray:
    """Generate a nacre surface in meters, shape (n_px, n_px).

    Each ``Range`` parameter is a fixed value or a [lo, hi] range drawn once per image; the ranges training
    draws from are written once, in ``conf/material/nacre.yaml``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random source (parameters and geometry are drawn from it).
    n_px : int
        Image side in pixels.
    pixel_size_m : float
        Pixel size in meters.
    tablet_size_m : Range
        Mean tablet diameter (at least 8 px).
    tablet_thickness_m : Range
        Tablet thickness, the height of one terrace step.
    terraces : Range
        Mean number of steps by which a tablet lies above the lowest layer (0: polished, coplanar).
    tablet_tilt : Range
        Std of each tablet's surface slope.
    groove_depth_m : Range
        Depth of the inter-tablet organic-matrix grooves.
    groove_width_m : Range
        Half-width of the grooves.
    asperity_size_m : Range
        Diameter of the nano-asperities (nanograins) on the tablet surfaces.
    asperity_height_m : Range
        Height of the nano-asperities.
    """
    g = grains(rng, n_px, max(meters_to_px(rng, tablet_size_m, pixel_size_m), 8.0), 0.3)
    m = len(g.centers)
    step = draw(rng.random, tablet_thickness_m) / pixel_size_m
    level = rng.poisson(draw(rng.random, terraces), m) * step
    tilt = rng.normal(0, draw(rng.random, tablet_tilt), (m, 2))
    dy, dx = g.offsets
    h = g.per_grain(level) + g.per_grain(tilt[:, 0]) * dy + g.per_grain(tilt[:, 1]) * dx
    width = max(meters_to_px(rng, groove_width_m, pixel_size_m), 0.5)
    h = h - draw(rng.random, groove_depth_m) / pixel_size_m * np.exp(-((g.boundary / width) ** 2))
    grain = max(meters_to_px(rng, asperity_size_m, pixel_size_m), 1.0)
    bumps = spectral_noise(rng, (n_px, n_px), low=0.25 / grain, high=0.5 / grain)
    h = h + draw(rng.random, asperity_height_m) / pixel_size_m * np.clip(bumps, 0, None)
    return h * pixel_size_m
