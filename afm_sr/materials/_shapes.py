"""Shared geometry for the synthetic materials: grain tessellations, feature placement, per-grain shapes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from afm_sr.ranges import Range, draw


def pixel_grid(n_px: int) -> np.ndarray:
    """(n_px*n_px, 2) pixel-centre coordinates (row, col), row-major."""
    r, c = np.mgrid[0:n_px, 0:n_px]
    return np.stack([r.ravel(), c.ravel()], axis=1).astype(np.float64)


def scatter_points(rng: np.random.Generator, n_px: int, spacing_px: float, pad_px: float = 0.0,
                   max_points: int = 20000) -> np.ndarray:
    """Uniform random points with mean spacing ``spacing_px`` over the image plus a margin ``pad_px``."""
    side = n_px + 2 * pad_px
    count = int(np.clip(rng.poisson(side**2 / max(spacing_px, 1e-3) ** 2), 1, max_points))
    return rng.uniform(-pad_px, n_px + pad_px, (count, 2))


@dataclass
class Grains:
    """A power (Laguerre) tessellation of the image: convex grains with straight boundaries.

    Attributes
    ----------
    labels : (n, n) int grain index per pixel.
    boundary : (n, n) distance in pixels to the nearest grain boundary.
    centers : (m, 2) seed coordinates (row, col) in pixels.
    inradius : (m,) largest boundary distance inside each grain (0 for grains outside the image).
    """

    labels: np.ndarray
    boundary: np.ndarray
    centers: np.ndarray
    inradius: np.ndarray

    @property
    def offsets(self) -> tuple[np.ndarray, np.ndarray]:
        """(dy, dx) of each pixel from its own grain's seed, in pixels."""
        n = self.labels.shape[0]
        r, c = np.mgrid[0:n, 0:n]
        return r - self.centers[self.labels, 0], c - self.centers[self.labels, 1]

    def per_grain(self, values: np.ndarray) -> np.ndarray:
        """Broadcast one value per grain to the image."""
        return values[self.labels]


def grains(rng: np.random.Generator, n_px: int, size_px: float, size_spread: float = 0.3,
           neighbours: int = 6) -> Grains:
    """Space-filling grains of mean diameter ``size_px`` with log-normal size spread ``size_spread``.

    Seeds scatter over the image plus a margin, each with a power weight ~ its own radius squared, so
    grain sizes vary while boundaries stay straight like sintered or columnar grains.
    """
    centers = scatter_points(rng, n_px, size_px, pad_px=size_px)
    radius = 0.5 * size_px * rng.lognormal(0.0, size_spread, len(centers))
    weight = radius**2 - np.mean(radius**2)
    k = min(neighbours, len(centers))
    dist, idx = cKDTree(centers).query(pixel_grid(n_px), k=k)
    idx = idx.reshape(-1, k)
    power = dist.reshape(-1, k) ** 2 - weight[idx]
    own = np.argmin(power, axis=1)
    rows = np.arange(len(idx))
    mine = idx[rows, own]
    delta = centers[idx] - centers[mine][:, None, :]
    sep = np.sqrt(delta[..., 0] ** 2 + delta[..., 1] ** 2)
    gap = (power - power[rows, own][:, None]) / (2 * np.where(sep > 0, sep, np.inf))
    gap[rows, own] = np.inf
    boundary = np.minimum(gap.min(axis=1), n_px).reshape(n_px, n_px)
    labels = mine.reshape(n_px, n_px)
    inradius = np.zeros(len(centers))
    present = np.unique(labels)
    inradius[present] = ndimage.maximum(boundary, labels, present)
    return Grains(labels, boundary, centers, inradius)


def dome(g: Grains, exponent: float = 0.5, edge: float = 0.3) -> np.ndarray:
    """Per-grain rounded cap, ~1 at the grain's centroid and 0 at its boundary (pebble-like grains).

    ``exponent`` shapes the cap (0.5 spherical, 1 parabolic, smaller flatter); ``edge`` is the width,
    as a fraction of the grain's inradius, over which the cap rounds off into the boundary.
    """
    n = g.labels.shape[0]
    r, c = np.mgrid[0:n, 0:n]
    present = np.unique(g.labels)
    m = len(g.centers)
    cy, cx, rmax2 = np.zeros(m), np.zeros(m), np.ones(m)
    cy[present] = ndimage.mean(r, g.labels, present)
    cx[present] = ndimage.mean(c, g.labels, present)
    rho2 = (r - g.per_grain(cy)) ** 2 + (c - g.per_grain(cx)) ** 2
    rmax2[present] = ndimage.maximum(rho2, g.labels, present) + 1.0
    cap = np.clip(1 - rho2 / g.per_grain(rmax2), 0, None) ** exponent
    rounding = -np.expm1(-g.boundary / np.maximum(edge * g.per_grain(g.inradius), 0.5))
    return cap * rounding


def facets(rng: np.random.Generator, g: Grains, n_facets: tuple[int, int] = (3, 6)) -> np.ndarray:
    """Per-grain pyramid of planar facets around a random apex, 0 at the apex and negative away from it.

    The facet count varies per grain; the slope is 1 (in pixels per pixel), scale it afterwards.
    """
    m = len(g.centers)
    k_max = n_facets[1]
    count = rng.integers(n_facets[0], n_facets[1] + 1, m)
    phase = rng.uniform(0, 2 * np.pi, m)
    angles = phase[:, None] + 2 * np.pi * np.arange(k_max)[None, :] / count[:, None]
    angles = angles + rng.normal(0, 0.15, (m, k_max))
    apex = rng.normal(0, 0.3, (m, 2)) * g.inradius[:, None]
    dy, dx = g.offsets
    lab = g.labels
    dy, dx = dy - apex[lab, 0], dx - apex[lab, 1]
    proj = dy[..., None] * np.sin(angles[lab]) + dx[..., None] * np.cos(angles[lab])
    proj = np.where(np.arange(k_max) < count[lab][..., None], proj, -np.inf)
    return -proj.max(axis=-1)


@dataclass
class Nearest:
    """The ``k`` nearest features of each pixel: indices and offsets (pixel minus feature), each (n, n, k)."""

    index: np.ndarray
    dy: np.ndarray
    dx: np.ndarray


def nearest_features(n_px: int, points: np.ndarray, k: int = 8) -> Nearest:
    """For every pixel, its ``k`` nearest points (so shapes can be evaluated vectorised and max-reduced)."""
    k = min(k, len(points))
    grid = pixel_grid(n_px)
    _, idx = cKDTree(points).query(grid, k=k)
    idx = idx.reshape(n_px, n_px, k)
    r, c = np.mgrid[0:n_px, 0:n_px]
    return Nearest(idx, r[..., None] - points[idx, 0], c[..., None] - points[idx, 1])


def lognormal_sizes(rng: np.random.Generator, count: int, median: float, spread: float) -> np.ndarray:
    """``count`` positive sizes with log-normal spread around ``median``."""
    return median * rng.lognormal(0.0, spread, count)


def meters_to_px(rng: np.random.Generator, value_m: Range, pixel_size_m: float) -> float:
    """Draw a length in meters and express it in pixels."""
    return draw(rng.random, value_m) / pixel_size_m
