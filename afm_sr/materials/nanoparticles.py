"""Nanoparticles (LiFePO4 / LiCoO2-like) on a flat substrate: size distribution, some aggregated."""

from __future__ import annotations

import numpy as np

from afm_sr.materials._shapes import lognormal_sizes, meters_to_px, nearest_features
from afm_sr.materials.instrument import spectral_noise
from afm_sr.ranges import Range, draw


def generate(rng: np.random.Generator, n_px: int, pixel_size_m: float, *,
             particle_size_m: Range, size_spread: Range, coverage: Range, aggregated: Range, aggregate_size: Range,
             elongation: Range, flattening: Range, stacked: Range, substrate_roughness_m: Range) -> np.ndarray:
    """Generate particles on a substrate in meters, shape (n_px, n_px).

    Each ``Range`` parameter is a fixed value or a [lo, hi] range drawn once per image; the ranges training
    draws from are written once, in ``conf/material/nanoparticles.yaml``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random source (parameters and geometry are drawn from it).
    n_px : int
        Image side in pixels.
    pixel_size_m : float
        Pixel size in meters.
    particle_size_m : Range
        Median particle diameter (at least 2.5 px, at most 1/6 of the frame).
    size_spread : Range
        Log-normal spread of the diameters.
    coverage : Range
        Projected area fraction covered by particles.
    aggregated : Range
        Share of particles that belong to aggregates rather than lying alone.
    aggregate_size : Range
        Mean number of particles per aggregate.
    elongation : Range
        In-plane aspect ratio of the particles (1 round, >1 rods/platelets seen from above).
    flattening : Range
        Vertical over lateral half-axis (1 spheres, < 1 flattened particles).
    stacked : Range
        Share of aggregated particles that rest on top of others.
    substrate_roughness_m : Range
        RMS roughness of the substrate.
    """
    size_px = float(np.clip(meters_to_px(rng, particle_size_m, pixel_size_m), 2.5, n_px / 6))
    spread = draw(rng.random, size_spread)
    mean_area = np.pi * (size_px / 2) ** 2 * np.exp(2 * spread**2)
    count = max(int(draw(rng.random, coverage) * n_px**2 / mean_area), 1)
    n_agg = int(count * draw(rng.random, aggregated))
    centers = rng.uniform(0, n_px, (count, 2))
    radius = lognormal_sizes(rng, count, size_px / 2, spread)
    centers[:n_agg] = _aggregates(rng, centers[:n_agg], radius[:n_agg], draw(rng.random, aggregate_size))
    lift = np.zeros(count)
    on_top = rng.uniform(size=count) < draw(rng.random, stacked)
    on_top[n_agg:] = False
    lift[on_top] = radius[on_top] * rng.uniform(0.8, 1.6, on_top.sum())
    aspect = rng.uniform(1.0, max(draw(rng.random, elongation), 1.0), count)
    angle = rng.uniform(0, np.pi, count)
    flat = draw(rng.random, flattening)
    near = nearest_features(n_px, centers, k=8)
    i = near.index
    u = near.dy * np.cos(angle[i]) + near.dx * np.sin(angle[i])
    v = -near.dy * np.sin(angle[i]) + near.dx * np.cos(angle[i])
    a = radius[i] * np.sqrt(aspect[i])
    b = radius[i] / np.sqrt(aspect[i])
    inside = np.clip(1 - (u / a) ** 2 - (v / b) ** 2, 0, None)
    cap = flat * radius[i] * (1 + np.sqrt(inside)) + lift[i]
    h = np.where(inside > 0, cap, 0.0).max(axis=-1) * pixel_size_m
    return h + draw(rng.random, substrate_roughness_m) * spectral_noise(rng, (n_px, n_px), exponent=2.0)


def _aggregates(rng: np.random.Generator, seeds: np.ndarray, radius: np.ndarray,
                mean_size: float) -> np.ndarray:
    """Move particles into branched clusters: each cluster is a random walk of touching particles."""
    n = len(seeds)
    if n == 0:
        return seeds
    cluster = np.sort(rng.integers(0, max(int(n / max(mean_size, 1.0)), 1), n))
    first = np.r_[True, cluster[1:] != cluster[:-1]]
    direction = rng.uniform(0, 2 * np.pi, n)
    step = 0.9 * (radius + np.roll(radius, 1))
    steps = np.stack([np.sin(direction), np.cos(direction)], axis=1) * step[:, None]
    steps[first] = seeds[first]
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    walk = np.cumsum(steps, axis=0)
    return walk - walk[start] + seeds[start]
