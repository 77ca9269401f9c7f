"""Semicrystalline polymer lamellae (PVDF-like): impinging spherulites of radial, branching lamellae."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from afm_sr.materials._shapes import grains, meters_to_px
from afm_sr.materials.instrument import spectral_noise
from afm_sr.ranges import Range, draw


def generate(rng: np.random.Generator, n_px: int, pixel_size_m: float, *,
             spherulite_size_m: Range, lamella_spacing_m: Range, lamella_height_m: Range, radial_order: Range,
             band_period_m: Range, banding: Range, boundary_depth: Range) -> np.ndarray:
    """Generate a spherulitic lamellar surface in meters, shape (n_px, n_px).

    Each ``Range`` parameter is a fixed value or a [lo, hi] range drawn once per image; the ranges training
    draws from are written once, in ``conf/material/polymer_lamellae.yaml``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random source (parameters and geometry are drawn from it).
    n_px : int
        Image side in pixels.
    pixel_size_m : float
        Pixel size in meters.
    spherulite_size_m : Range
        Mean spherulite diameter (spherulites meet along straight boundaries).
    lamella_spacing_m : Range
        Lateral spacing of the lamellae (at least 2.5 px).
    lamella_height_m : Range
        Height modulation of the lamellae.
    radial_order : Range
        How far lamellae run radially before branching, as a fraction of 8 spacings.
    band_period_m : Range
        Period of the concentric ring bands (lamellar twist).
    banding : Range
        Ring-band amplitude, as a fraction of the lamella height.
    boundary_depth : Range
        Depth of the grooves where spherulites meet, as a multiple of the lamella height.
    """
    spacing = max(meters_to_px(rng, lamella_spacing_m, pixel_size_m), 2.5)
    g = grains(rng, n_px, max(meters_to_px(rng, spherulite_size_m, pixel_size_m), 8.0), 0.3)
    dy, dx = g.offsets
    radius = np.hypot(dy, dx) + 1e-9
    ey, ex = dy / radius, dx / radius
    texture = spectral_noise(rng, (n_px, n_px), low=0.5 / spacing, high=1.0 / spacing)
    reach = 8 * spacing * draw(rng.random, radial_order)
    r, c = np.mgrid[0:n_px, 0:n_px].astype(np.float64)
    smeared = np.mean([ndimage.map_coordinates(texture, [r + t * ey, c + t * ex], order=1, mode="mirror")
                       for t in np.linspace(-reach / 2, reach / 2, 9)], axis=0)
    lamellae = np.tanh(2 * smeared / (smeared.std() + 1e-12))
    height = draw(rng.random, lamella_height_m)
    period = max(meters_to_px(rng, band_period_m, pixel_size_m), 2 * spacing)
    bands = draw(rng.random, banding) * np.cos(2 * np.pi * radius / period)
    groove = -draw(rng.random, boundary_depth) * np.exp(-((g.boundary / spacing) ** 2))
    return height * (0.5 * lamellae + bands + groove)
