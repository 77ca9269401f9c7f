"""Semicrystalline polymer nanofibrils (P3HT-like): a network of long, thin, gently curved fibrils."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from afm_sr.materials._shapes import meters_to_px
from afm_sr.materials.instrument import spectral_noise
from afm_sr.ranges import Range, draw


def generate(rng: np.random.Generator, n_px: int, pixel_size_m: float, *,
             fibril_width_m: Range, fibril_height_m: Range, fibril_length_m: Range, density: Range, curvature: Range,
             alignment: Range, matrix_roughness: Range) -> np.ndarray:
    """Generate a nanofibril network in meters, shape (n_px, n_px).

    Each ``Range`` parameter is a fixed value or a [lo, hi] range drawn once per image; the ranges training
    draws from are written once, in ``conf/material/polymer_fibrils.yaml``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random source (parameters and geometry are drawn from it).
    n_px : int
        Image side in pixels.
    pixel_size_m : float
        Pixel size in meters.
    fibril_width_m : Range
        Fibril width (at least 1.5 px).
    fibril_height_m : Range
        Height of one fibril above the matrix.
    fibril_length_m : Range
        Mean fibril length.
    density : Range
        Fibril centre-line length per image area, in units of 1 / fibril width.
    curvature : Range
        Mean bending (radians per pixel of length).
    alignment : Range
        0 random orientations, towards 1 all fibrils along one direction.
    matrix_roughness : Range
        RMS of the amorphous matrix, as a fraction of the fibril height.
    """
    width = max(meters_to_px(rng, fibril_width_m, pixel_size_m), 1.5)
    height = draw(rng.random, fibril_height_m)
    length = float(np.clip(meters_to_px(rng, fibril_length_m, pixel_size_m), 4 * width, 2 * n_px))
    count = max(int(draw(rng.random, density) * n_px**2 / (width * length)), 1)
    steps = int(2 * length)
    axis, spread = rng.uniform(0, np.pi), np.pi * (1 - draw(rng.random, alignment))
    theta0 = axis + rng.uniform(-spread / 2, spread / 2, count)
    bend = rng.normal(0, draw(rng.random, curvature), count)[:, None] * np.ones(steps)
    theta = theta0[:, None] + np.cumsum(0.5 * (bend + rng.normal(0, 0.02, (count, steps))), axis=1)
    start = rng.uniform(-length / 2, n_px + length / 2, (count, 2))
    rows = start[:, :1] + np.cumsum(0.5 * np.sin(theta), axis=1)
    cols = start[:, 1:] + np.cumsum(0.5 * np.cos(theta), axis=1)
    keep = np.arange(steps)[None, :] < (length * rng.uniform(0.3, 1.0, count))[:, None] * 2
    level = (rng.permutation(count) / count * height)[:, None] * np.ones(steps)
    inside = keep & (rows >= 0) & (rows < n_px) & (cols >= 0) & (cols < n_px)
    centre = np.full((n_px, n_px), -np.inf)
    np.maximum.at(centre, (rows[inside].astype(int), cols[inside].astype(int)), level[inside])
    h = ndimage.grey_dilation(centre, structure=_tube(width / 2, height), mode="constant", cval=-np.inf)
    h = np.maximum(np.where(np.isfinite(h), h, 0.0), 0.0)
    return h + draw(rng.random, matrix_roughness) * height * spectral_noise(rng, (n_px, n_px), exponent=2.5)


def _tube(radius_px: float, height: float) -> np.ndarray:
    """Cross-section of a fibril as a dilation structure: an elliptic cap of ``height``, -inf outside."""
    m = int(np.ceil(radius_px))
    u = np.arange(-m, m + 1)
    r2 = (u[:, None] ** 2 + u[None, :] ** 2) / max(radius_px, 0.5) ** 2
    return np.where(r2 <= 1, height * np.sqrt(np.clip(1 - r2, 0, None)), -np.inf)
