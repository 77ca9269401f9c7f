"""Degradations: make the network input (bicubic-upscaled LR) from an HR image, as pure functions.

``imresize`` reproduces MATLAB's ``imresize(..., 'bicubic')`` (Keys cubic, a = -0.5, antialiased when
shrinking, symmetric border) as a pair of dense resampling matrices, so a whole batch is resized by two
matrix products on any device.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Protocol

import numpy as np
import torch

from afm_sr.choices import check_scale
from afm_sr.ranges import Range, as_range, draw


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic')."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * (
        (ax > 1) & (ax <= 2)
    )


@lru_cache(maxsize=256)
def _weights(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """Dense (out_len, in_len) resampling matrix following MATLAB's ``contributions``."""
    width = 4.0
    if scale < 1:  # antialiasing: stretch the kernel when shrinking
        def kernel(x: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * x)
        width = width / scale
    else:
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    w = kernel(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
    src = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    mat = np.zeros((out_len, in_len))
    np.add.at(mat, (np.repeat(np.arange(out_len), taps), src.ravel()), w.ravel())
    return mat


def imresize(img: torch.Tensor, scale: float | None = None, size: tuple[int, int] | None = None) -> torch.Tensor:
    """MATLAB-compatible bicubic resize of the last two dims of ``img`` (any leading batch dims).

    Give either ``scale`` (output size ``ceil(scale * input)``, as MATLAB) or ``size`` (rows, cols).
    """
    h, w = img.shape[-2:]
    if size is None:
        if scale is None:
            raise ValueError("imresize needs scale or size")
        size = (math.ceil(h * scale), math.ceil(w * scale))
        sy = sx = float(scale)
    else:
        sy, sx = size[0] / h, size[1] / w
    dtype = img.dtype if img.is_floating_point() else torch.float32
    wy = torch.as_tensor(_weights(h, size[0], sy), dtype=dtype, device=img.device)
    wx = torch.as_tensor(_weights(w, size[1], sx), dtype=dtype, device=img.device)
    return wy @ img.to(dtype) @ wx.T


def bicubic_matrix(in_len: int, scale: int) -> np.ndarray:
    """The (scale * in_len, in_len) float64 matrix of ``imresize``'s upscaling along one axis (cached)."""
    return _weights(in_len, in_len * int(scale), float(scale))


def modcrop(img: torch.Tensor, multiple: int) -> torch.Tensor:
    """Crop the last two dims to a multiple of ``multiple`` (so LR and HR grids align exactly)."""
    h, w = img.shape[-2:]
    return img[..., : h - h % multiple, : w - w % multiple]


class Degradation(Protocol):
    """Anything that makes the LR image of a (z-scored) HR image for a scale, with its own randomness."""

    def downscale(self, hr: torch.Tensor, scale: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return the LR image of ``hr`` ([..., H, W] -> [..., ceil(H/s), ceil(W/s)])."""
        ...


def degrade(degradation: Degradation, hr: torch.Tensor, scale: int,
            generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR, bicubic-upscaled LR of the HR size): the network's input is always the bicubic upscaling."""
    check_scale(scale, tuple(hr.shape))
    lr = degradation.downscale(hr, scale, generator)
    return lr, imresize(lr, size=tuple(hr.shape[-2:]))


class BicubicDegradation:
    """The paper's degradation: HR -> bicubic down by s -> bicubic up to the HR size."""

    def downscale(self, hr: torch.Tensor, scale: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The LR image (bicubic, antialiased)."""
        return imresize(hr, 1.0 / scale)



def _cubic_taps(pos: np.ndarray, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return indices (clamped to the border) and Keys cubic weights of the 4 samples around each position."""
    base = np.floor(pos)
    offsets = np.arange(-1, 3)
    idx = np.clip(base[..., None] + offsets, 0, n - 1).astype(np.int64)
    weights = _cubic(pos[..., None] - base[..., None] - offsets)
    return torch.from_numpy(idx), torch.from_numpy(weights / weights.sum(-1, keepdims=True))


def point_sample(img: torch.Tensor, rows: np.ndarray, cols: np.ndarray) -> torch.Tensor:
    """Sample the last two dims of ``img`` at fractional positions, Keys cubic (exact on the pixel grid).

    ``rows`` (n_rows,) gives each output row's position; ``cols`` (n_rows, n_cols) the positions within
    that row, so a drifting fast axis can shift from line to line.
    """
    iy, wy = _cubic_taps(rows, img.shape[-2])
    ix, wx = _cubic_taps(cols, img.shape[-1])
    wy, wx = wy.to(img), wx.to(img)
    iy, ix = iy.to(img.device), ix.to(img.device)
    line = (img[..., iy, :] * wy[..., None]).sum(-2)
    line_index = torch.arange(len(rows), device=img.device)[:, None, None]
    return (line[..., line_index, ix] * wx).sum(-1)


def uniform_source(generator: torch.Generator | None) -> Callable[[], float]:
    """``generator``'s uniform [0, 1) numbers one call at a time: the source ``afm_sr.ranges.draw`` takes."""
    return lambda: float(torch.rand((), generator=generator))


def scan_positions(shape: tuple[int, ...], scale: int, drift: float = 0.0, angle: float = 0.0,
                   line_offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """HR positions of an s-times coarser scan of ``shape`` (last two dims): rows (n_rows,), cols (n_rows, n_cols).

    MATLAB's pixel centres ``(i + 0.5) s - 0.5``, every line moved by ``line_offset`` and by a drift that grows over
    the frame to ``drift`` HR pixels in the direction ``angle`` (a shear of x, a stretch of y).
    """
    n_rows, n_cols = math.ceil(shape[-2] / scale), math.ceil(shape[-1] / scale)
    progress = np.arange(n_rows) / max(n_rows - 1, 1)
    rows = (np.arange(n_rows) + 0.5) * scale - 0.5 + line_offset + drift * math.sin(angle) * progress
    cols = (np.arange(n_cols) + 0.5) * scale - 0.5 + drift * math.cos(angle) * progress[:, None]
    return rows, cols


class ScanDegradation:
    """A real low-resolution scan: point samples on an s-times coarser grid, with its own noise and drift.

    The LR pixel i sits at HR coordinate (i + 0.5) s - 0.5 (the convention of ``imresize``), so the
    bicubic-upscaled result aligns with the HR image. Noise amplitudes are in z-score units (the HR is
    z-scored); each is a number or a [lo, hi] range drawn per call from ``generator``.

    Parameters
    ----------
    line_noise : float or (float, float)
        Std of a per-scan-line offset.
    white_noise : float or (float, float)
        Std of white measurement noise per LR pixel.
    drift_px : float or (float, float)
        Drift over the frame in HR pixels, in a random direction (shear of x, stretch of y).
    """

    def __init__(self, line_noise: Range = (0.0, 0.05), white_noise: Range = (0.0, 0.03),
                 drift_px: Range = (0.0, 1.0)) -> None:
        self.line_noise = as_range(line_noise)
        self.white_noise = as_range(white_noise)
        self.drift_px = as_range(drift_px)

    def downscale(self, hr: torch.Tensor, scale: int,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """Return the LR scan, ``ceil(H / s) x ceil(W / s)`` point samples of ``hr`` plus the scan's noise."""
        uniform = uniform_source(generator)
        drift = draw(uniform, self.drift_px)
        angle = 2 * math.pi * uniform()
        lr = point_sample(hr, *scan_positions(tuple(hr.shape), scale, drift, angle))
        shape = (*lr.shape[:-1], 1)
        lr = lr + draw(uniform, self.line_noise) * torch.randn(shape, generator=generator).to(lr)
        return lr + draw(uniform, self.white_noise) * torch.randn(lr.shape, generator=generator).to(lr)



class MixedDegradation:
    """Pick one of several degradations per call with the given weights (e.g. bicubic and scan)."""

    def __init__(self, degradations: list[Degradation], weights: list[float] | None = None) -> None:
        if not degradations:
            raise ValueError("MixedDegradation needs at least one degradation")
        if not all(callable(getattr(d, "downscale", None)) for d in degradations):
            raise ValueError(f"MixedDegradation mixes degradations (objects with a downscale method), got "
                             f"{degradations!r:.200}")
        self.degradations = list(degradations)
        w = [1.0] * len(self.degradations) if weights is None else [float(v) for v in weights]
        if len(w) != len(self.degradations) or min(w) < 0 or sum(w) <= 0:
            raise ValueError(f"weights {w} must be one non-negative number per degradation, not all 0")
        self.weights = torch.tensor(w, dtype=torch.float64)

    def downscale(self, hr: torch.Tensor, scale: int,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """Return the LR image from a degradation drawn with ``generator``."""
        pick = self.degradations[int(torch.multinomial(self.weights, 1, generator=generator))]
        return pick.downscale(hr, scale, generator)

