"""Faceted oxide crystals (LiMn2O4 octahedra seen as square pyramids, NMC-like hexagonal plates)."""

from __future__ import annotations

import numpy as np

from afm_sr.materials._shapes import lognormal_sizes, meters_to_px, nearest_features
from afm_sr.materials.instrument import spectral_noise
from afm_sr.ranges import Range, draw


def generate(rng: np.random.Generator, n_px: int, pixel_size_m: float, *,
             crystal_size_m: Range, size_spread: Range, coverage: Range, plate_fraction: Range, pyramid_slope: Range,
             plate_thickness: Range, truncation: Range, stacked: Range, substrate_roughness_m: Range) -> np.ndarray:
    """Generate a layer of faceted crystals in meters, shape (n_px, n_px).

    Each ``Range`` parameter is a fixed value or a [lo, hi] range drawn once per image; the ranges training
    draws from are written once, in ``conf/material/oxide_crystals.yaml``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random source (parameters and geometry are drawn from it).
    n_px : int
        Image side in pixels.
    pixel_size_m : float
        Pixel size in meters.
    crystal_size_m : Range
        Median crystal width (at least 4 px, at most 1/4 of the frame).
    size_spread : Range
        Log-normal spread of the widths.
    coverage : Range
        Projected area fraction covered by crystals.
    plate_fraction : Range
        Share of hexagonal plates; the rest are octahedra (4-sided pyramids from above).
    pyramid_slope : Range
        Facet slope of the octahedra ({111} facets of a [001]-up octahedron: about 1.4).
    plate_thickness : Range
        Plate thickness as a fraction of its width.
    truncation : Range
        Pyramid tops are cut at this fraction of their full height (1: pointed).
    stacked : Range
        Share of crystals lying on others.
    substrate_roughness_m : Range
        RMS roughness of the substrate.
    """
    size_px = float(np.clip(meters_to_px(rng, crystal_size_m, pixel_size_m), 4.0, n_px / 4))
    spread = draw(rng.random, size_spread)
    count = max(int(draw(rng.random, coverage) * n_px**2 / (size_px**2 * np.exp(2 * spread**2))), 1)
    centers = rng.uniform(0, n_px, (count, 2))
    half = lognormal_sizes(rng, count, size_px / 2, spread)
    plate = rng.uniform(size=count) < draw(rng.random, plate_fraction)
    sides = np.where(plate, 6, 4)
    rotation = rng.uniform(0, np.pi, count)
    slope = np.where(plate, 4.0, draw(rng.random, pyramid_slope))
    top = np.where(plate, 2 * half * draw(rng.random, plate_thickness), half * slope * draw(rng.random, truncation))
    lift = np.where(rng.uniform(size=count) < draw(rng.random, stacked), top * rng.uniform(0.3, 1.0, count), 0.0)
    order = np.argsort(lift)
    centers, half, sides, rotation, slope, top, lift = (
        a[order] for a in (centers, half, sides, rotation, slope, top, lift))
    near = nearest_features(n_px, centers, k=6)
    i = near.index
    k = np.arange(6)
    angles = rotation[i][..., None] + 2 * np.pi * k / sides[i][..., None]
    proj = near.dy[..., None] * np.sin(angles) + near.dx[..., None] * np.cos(angles)
    norm = np.where(k < sides[i][..., None], proj, -np.inf).max(axis=-1)
    h = np.minimum(top[i], slope[i] * (half[i] - norm))
    h = np.where(h > 0, h + lift[i], 0.0).max(axis=-1) * pixel_size_m
    return h + draw(rng.random, substrate_roughness_m) * spectral_noise(rng, (n_px, n_px), exponent=2.0)
