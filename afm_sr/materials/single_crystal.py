"""Polished single crystal (PZN-PT-like): flat terraces with meandering steps, polishing scratches."""

from __future__ import annotations

import numpy as np

from afm_sr.materials._shapes import meters_to_px
from afm_sr.materials.instrument import spectral_noise
from afm_sr.ranges import Range, draw


def generate(rng: np.random.Generator, n_px: int, pixel_size_m: float, *,
             step_height_m: Range, terrace_width_m: Range, step_meander: Range, scratches: Range,
             scratch_depth_m: Range, scratch_width_m: Range, scratch_spread_deg: Range,
             roughness_m: Range) -> np.ndarray:
    """Generate a polished crystal surface in meters, shape (n_px, n_px).

    Each ``Range`` parameter is a fixed value or a [lo, hi] range drawn once per image; the ranges training
    draws from are written once, in ``conf/material/single_crystal.yaml``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random source (parameters and geometry are drawn from it).
    n_px : int
        Image side in pixels.
    pixel_size_m : float
        Pixel size in meters.
    step_height_m : Range
        Height of one step (a unit cell ~0.4 nm, more where steps bunch).
    terrace_width_m : Range
        Mean terrace width (at least 3 px).
    step_meander : Range
        Lateral wandering of the steps, in terrace widths.
    scratches : Range
        Number of polishing scratches.
    scratch_depth_m : Range
        Maximum scratch depth (each scratch draws up to this).
    scratch_width_m : Range
        Maximum scratch half-width (at least 0.7 px).
    scratch_spread_deg : Range
        Angular spread of the scratch directions around the polishing direction.
    roughness_m : Range
        RMS of the fine residual roughness.
    """
    terrace = max(meters_to_px(rng, terrace_width_m, pixel_size_m), 3.0)
    r, c = np.mgrid[0:n_px, 0:n_px].astype(np.float64)
    miscut = rng.uniform(0, 2 * np.pi)
    phase = (c * np.cos(miscut) + r * np.sin(miscut)) / terrace
    phase = phase + draw(rng.random, step_meander) * spectral_noise(rng, (n_px, n_px), exponent=4.0)
    h = draw(rng.random, step_height_m) / pixel_size_m * (np.floor(phase) - phase)  # levelled: terraces + steps
    h = h + _scratches(rng, n_px, int(draw(rng.random, scratches)), draw(rng.random, scratch_depth_m) / pixel_size_m,
                       max(meters_to_px(rng, scratch_width_m, pixel_size_m), 0.7),
                       np.deg2rad(draw(rng.random, scratch_spread_deg)))
    h = h * pixel_size_m
    return h + draw(rng.random, roughness_m) * spectral_noise(rng, (n_px, n_px), exponent=2.0)


def _scratches(rng: np.random.Generator, n_px: int, count: int, depth: float, width: float,
               spread: float) -> np.ndarray:
    """Straight grooves of finite length, mostly along one polishing direction (pixels)."""
    if count == 0:
        return np.zeros((n_px, n_px))
    direction = rng.uniform(0, np.pi) + rng.uniform(-spread / 2, spread / 2, count)
    centre = rng.uniform(0, n_px, (count, 2))
    half_length = rng.uniform(0.2, 1.5, count) * n_px
    d = depth * rng.uniform(0.1, 1.0, count)
    w = np.maximum(width * rng.uniform(0.3, 1.0, count), 0.7)
    r, c = np.mgrid[0:n_px, 0:n_px].astype(np.float64)
    dy, dx = r[None] - centre[:, 0, None, None], c[None] - centre[:, 1, None, None]
    cos, sin = np.cos(direction)[:, None, None], np.sin(direction)[:, None, None]
    along, across = dx * cos + dy * sin, -dx * sin + dy * cos
    overshoot = np.clip(np.abs(along) - half_length[:, None, None], 0, None)
    taper = np.exp(-((overshoot / (4 * w[:, None, None])) ** 2))
    return -(d[:, None, None] * taper * np.exp(-((across / w[:, None, None]) ** 2))).max(axis=0)
