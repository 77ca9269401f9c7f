"""Polycrystalline thin film (doped ZnO-like): small columnar grains with rounded tops, fractal roughness."""

from __future__ import annotations

import numpy as np

from afm_sr.materials._shapes import dome, grains, meters_to_px
from afm_sr.materials.instrument import spectral_noise
from afm_sr.ranges import Range, draw


def generate(rng: np.random.Generator, n_px: int, pixel_size_m: float, *,
             grain_size_m: Range, size_spread: Range, grain_height_m: Range, column_jitter: Range, dome_exponent: Range,
             fractal_exponent: Range, roughness: Range) -> np.ndarray:
    """Generate a columnar thin-film surface in meters, shape (n_px, n_px).

    Each ``Range`` parameter is a fixed value or a [lo, hi] range drawn once per image; the ranges training
    draws from are written once, in ``conf/material/thin_film.yaml``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random source (parameters and geometry are drawn from it).
    n_px : int
        Image side in pixels.
    pixel_size_m : float
        Pixel size in meters.
    grain_size_m : Range
        Mean column diameter (at least 3 px).
    size_spread : Range
        Log-normal spread of the column radii.
    grain_height_m : Range
        Height of a column's rounded cap.
    column_jitter : Range
        Random height of each column, as a fraction of the cap height (competitive growth).
    dome_exponent : Range
        Shape of the caps (1 parabolic, 0.5 spherical).
    fractal_exponent : Range
        Spectral exponent of the self-affine background roughness.
    roughness : Range
        RMS of the fractal background, as a fraction of the cap height.
    """
    size_px = float(np.clip(meters_to_px(rng, grain_size_m, pixel_size_m), 3.0, n_px / 4))
    g = grains(rng, n_px, size_px, draw(rng.random, size_spread))
    cap = draw(rng.random, grain_height_m)
    h = cap * dome(g, draw(rng.random, dome_exponent), edge=0.5)
    h = h + g.per_grain(rng.normal(0, draw(rng.random, column_jitter) * cap, len(g.centers)))
    fractal = spectral_noise(rng, (n_px, n_px), exponent=draw(rng.random, fractal_exponent))
    return h + draw(rng.random, roughness) * cap * fractal
