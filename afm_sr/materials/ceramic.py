"""Granular sintered ceramic (LAGP-like): domed or faceted grains, grooved boundaries, pores."""

from __future__ import annotations

import numpy as np

from afm_sr.materials._shapes import dome, facets, grains, meters_to_px, nearest_features, scatter_points
from afm_sr.materials.instrument import spectral_noise
from afm_sr.ranges import Range, draw


def generate(rng: np.random.Generator, n_px: int, pixel_size_m: float, *,
             grain_size_m: Range, size_spread: Range, aspect: Range, faceted_fraction: Range, facet_slope: Range,
             dome_exponent: Range, height_jitter: Range, groove_depth: Range, groove_width_m: Range,
             pores_per_grain: Range, pore_size: Range, waviness: Range, roughness: Range) -> np.ndarray:
    """Generate a sintered-ceramic surface in meters, shape (n_px, n_px).

    Each ``Range`` parameter is a fixed value or a [lo, hi] range drawn once per image; the ranges training
    draws from are written once, in ``conf/material/ceramic.yaml``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random source (parameters and geometry are drawn from it).
    n_px : int
        Image side in pixels.
    pixel_size_m : float
        Pixel size in meters.
    grain_size_m : Range
        Mean grain diameter (at least 4 px, at most half the frame).
    size_spread : Range
        Log-normal spread of grain radii.
    aspect : Range
        Dome height over grain radius.
    faceted_fraction : Range
        Share of grains with faceted instead of domed tops.
    facet_slope : Range
        Slope of the facets (height per lateral distance).
    dome_exponent : Range
        Shape of the domes (1 parabolic, 0.5 spherical, smaller flatter tops).
    height_jitter : Range
        Random per-grain base height, as a fraction of the mean grain height.
    groove_depth : Range
        Grain-boundary groove depth, as a fraction of the mean grain height.
    groove_width_m : Range
        Half-width of the thermal grooves.
    pores_per_grain : Range
        Pore count per grain.
    pore_size : Range
        Pore diameter as a fraction of the grain size.
    waviness : Range
        Long-wavelength undulation of the pellet, as a fraction of the mean grain height.
    roughness : Range
        Fine fractal roughness, as a fraction of the mean grain height.
    """
    size_px = float(np.clip(meters_to_px(rng, grain_size_m, pixel_size_m), 4.0, n_px / 2))
    g = grains(rng, n_px, size_px, draw(rng.random, size_spread))
    m = len(g.centers)
    ratio = draw(rng.random, aspect)
    height_px = ratio * size_px / 2
    domed = dome(g, draw(rng.random, dome_exponent)) * g.per_grain(g.inradius) * ratio
    roof = (g.per_grain(g.inradius) + facets(rng, g)) * draw(rng.random, facet_slope)
    faceted = g.per_grain(rng.uniform(size=m) < draw(rng.random, faceted_fraction))
    h = np.where(faceted, np.maximum(roof, 0), domed)
    h = h + g.per_grain(rng.normal(0, draw(rng.random, height_jitter) * height_px, m))
    width = max(meters_to_px(rng, groove_width_m, pixel_size_m), 0.5)
    h = h - draw(rng.random, groove_depth) * height_px * np.exp(-((g.boundary / width) ** 2))
    h = h + _pores(rng, n_px, size_px, height_px, draw(rng.random, pores_per_grain), draw(rng.random, pore_size))
    h = h + draw(rng.random, waviness) * height_px * spectral_noise(rng, (n_px, n_px), exponent=4.0)
    h = h + draw(rng.random, roughness) * height_px * spectral_noise(rng, (n_px, n_px), exponent=3.0)
    return h * pixel_size_m


def _pores(rng: np.random.Generator, n_px: int, size_px: float, height_px: float, per_grain: float,
           rel_size: float) -> np.ndarray:
    """Negative relief of round pores (deeper than the grooves, so they read as dark holes)."""
    if per_grain <= 0:
        return np.zeros((n_px, n_px))
    centers = scatter_points(rng, n_px, size_px / np.sqrt(per_grain))
    radius = np.maximum(0.5 * rel_size * size_px * rng.lognormal(0, 0.3, len(centers)), 1.0)
    depth = height_px * rng.uniform(0.5, 1.5, len(centers))
    near = nearest_features(n_px, centers, k=3)
    r = radius[near.index]
    inside = np.clip(1 - (near.dy**2 + near.dx**2) / r**2, 0, None)
    return -(depth[near.index] * np.sqrt(inside)).max(axis=-1)
