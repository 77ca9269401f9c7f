"""Per-image preprocessing: validity checks, leveling, percentile clip + z-score and its inverse."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from afm_sr.errors import InputError
from afm_sr.io.heightmap import value_problem


@dataclass(frozen=True)
class Normalization:
    """Statistics that map meters to the network's z-scored space and back.

    ``lo``/``hi`` are the clip limits (meters), ``mean``/``std`` those of the clipped image (meters).
    """

    lo: float
    hi: float
    mean: float
    std: float

    def apply(self, heights: np.ndarray) -> np.ndarray:
        """Clip to [lo, hi] and z-score (meters -> network units)."""
        return (np.clip(heights, self.lo, self.hi) - self.mean) / self.std

    def invert(self, z: np.ndarray) -> np.ndarray:
        """Network units -> meters; the clip cannot be undone (``enhance`` adds the residual to unclipped heights)."""
        return np.asarray(z, dtype=np.float64) * self.std + self.mean

    @property
    def z_range(self) -> tuple[float, float]:
        """The clipped range [lo, hi] expressed in network units."""
        return ((self.lo - self.mean) / self.std, (self.hi - self.mean) / self.std)


def check_heights(heights: np.ndarray, what: str = "height map", min_size: int = 2) -> np.ndarray:
    """Return ``heights`` as float64 2-D, or raise InputError saying why it cannot be used."""
    a = np.asarray(heights)
    if a.ndim != 2:
        raise InputError(f"{what}: expected a 2-D height map, got shape {a.shape}")
    if min(a.shape) < min_size:
        raise InputError(f"{what}: {a.shape[0]}x{a.shape[1]} px is too small (need at least "
                         f"{min_size}x{min_size})")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise InputError(f"{what}: heights must be real numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    problem = value_problem(a, float32=True)  # the network computes in float32
    if problem:
        raise InputError(f"{what}: {problem.replace('values', 'heights')}; fill or crop bad values (e.g. in "
                         "Gwyddion), or rescale the data, before using afm-sr")
    if np.ptp(a) == 0:
        raise InputError(f"{what}: the image is constant ({a.flat[0]!r} everywhere); nothing to resolve")
    return a


def fit_normalization(heights: np.ndarray, clip_percentiles: tuple[float, float] = (2.5, 97.5)) -> Normalization:
    """Clip limits at the given percentiles, then mean and std of the clipped image (the paper's recipe)."""
    a = check_heights(heights)
    lo, hi = np.percentile(a, clip_percentiles)
    if hi <= lo:  # more than 95 % of pixels share one value: fall back to the full range
        lo, hi = float(a.min()), float(a.max())
    clipped = np.clip(a, lo, hi)
    std = float(clipped.std())
    if std == 0.0:
        raise InputError("height map: no height variation left after clipping")
    return Normalization(float(lo), float(hi), float(clipped.mean()), std)


def normalize(heights: np.ndarray, clip_percentiles: tuple[float, float] = (2.5, 97.5)
              ) -> tuple[np.ndarray, Normalization]:
    """Clip to percentiles and z-score one image; returns the array and the statistics to undo it."""
    stats = fit_normalization(heights, clip_percentiles)
    return stats.apply(np.asarray(heights, dtype=np.float64)), stats


def plane_level(heights: np.ndarray) -> np.ndarray:
    """Subtract the least-squares plane z = a + b x + c y (first-order leveling)."""
    a = np.asarray(heights, dtype=np.float64)
    ny, nx = a.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    design = np.stack([np.ones(a.size), xx.ravel(), yy.ravel()], axis=1)
    coef, *_ = np.linalg.lstsq(design, a.ravel(), rcond=None)
    return a - (design @ coef).reshape(a.shape)


def align_rows(heights: np.ndarray) -> np.ndarray:
    """Shift each scan line so the median of its difference to the previous line is zero.

    This is Gwyddion's 'Align rows' with the median-of-differences method: it removes the line-to-line
    offsets that feedback drift leaves without flattening real features.
    """
    a = np.asarray(heights, dtype=np.float64)
    steps = np.median(np.diff(a, axis=0), axis=1)
    offsets = np.concatenate([[0.0], np.cumsum(steps)])
    out = a - offsets[:, None]
    return out - np.median(out)


def level(heights: np.ndarray, plane: bool = True, rows: bool = False) -> np.ndarray:
    """Apply the configured leveling steps in Gwyddion's usual order (plane, then rows)."""
    out = np.asarray(heights, dtype=np.float64)
    if plane:
        out = plane_level(out)
    if rows:
        out = align_rows(out)
    return out
