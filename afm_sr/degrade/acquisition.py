"""Physical acquisition models of an AFM scan: how a surface becomes the pixels of an s-times coarser scan.

The probe sweeps each line along the fast axis (x, the columns): the tip's shape dilates the surface (a
morphological operation, not a blur), the feedback lags behind the surface in the scan direction, the detector
averages over the time one pixel takes (a box along x) and the probe responds over a small area (a Gaussian),
the lines sit wherever the slow axis puts them, and the signal carries white, line-to-line and 1/f noise.
``Acquisition`` is one such setting; ``FixedAcquisition`` applies one (benchmark protocols, eval configs);
``AcquisitionDegradation`` draws one per call from ranges (the randomized training family: the Real-ESRGAN idea,
for AFM). Lengths are in LR pixels, so a setting means the same at every scale; heights in the HR image's units
(z-scores in training). With every effect off an acquisition is a point sample at MATLAB's pixel centres, so a
linear ramp stays where ``imresize`` puts it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
import torch.nn.functional as F

from afm_sr.degrade import point_sample, scan_positions, uniform_source
from afm_sr.ranges import Range, as_range, draw

#: The tip dilates at most this many LR pixels (and 8 HR pixels) around each point: beyond it a realistic
#: paraboloid has dropped below the surface's range.
TIP_REACH_LR = 4


@dataclass(frozen=True)
class Acquisition:
    """One acquisition setting (every effect 0 = off).

    tip : paraboloid tip curvature, height units per LR pixel squared (the tip's surface is ``-tip * d**2``).
    fast_width : width of the detector's box along the fast axis, LR pixels (1: the whole pixel's time).
    probe_sigma : Gaussian probe response on both axes, LR pixels.
    line_offset : shift of every scan line from MATLAB's pixel centres along the slow axis, LR pixels.
    lag : time constant of the feedback's first-order low-pass along the fast axis, LR pixels.
    retrace : the line is scanned right to left (the lag trails the other way).
    white, line, pink : std of white noise per pixel, of an offset per line, of 1/f noise in scan order.
    drift, drift_angle : drift over the frame (LR pixels) and its direction (radians).
    """

    tip: float = 0.0
    fast_width: float = 0.0
    probe_sigma: float = 0.0
    line_offset: float = 0.0
    lag: float = 0.0
    retrace: bool = False
    white: float = 0.0
    line: float = 0.0
    pink: float = 0.0
    drift: float = 0.0
    drift_angle: float = 0.0

    def describe(self) -> str:
        """The effects that are on, e.g. ``tip 0.5, fast box 1 px, white 0.01``: for tables and messages."""
        on = [f"{f.name} {getattr(self, f.name):g}" for f in fields(self)
              if f.name not in ("retrace", "drift_angle") and getattr(self, f.name)]
        return ", ".join(on + (["retrace"] if self.retrace else [])) or "point samples"


def _shift(img: torch.Tensor, offset: int, dim: int) -> torch.Tensor:
    """``img`` moved by ``offset`` pixels along ``dim`` (``out[i] = img[i - offset]``), edges repeated."""
    n = img.shape[dim]
    index = (torch.arange(n, device=img.device) - offset).clamp(0, n - 1)
    return img.index_select(dim, index)


def tip_dilate(img: torch.Tensor, curvature: float, reach: int) -> torch.Tensor:
    """Grey dilation of the last two dims by a paraboloid tip ``-curvature * (dx**2 + dy**2)`` (per pixel squared).

    A paraboloid is separable under max-plus (``max_dx max_dy``), so it is two 1-D dilations of ``reach`` pixels.
    """
    if curvature <= 0 or reach < 1:
        return img
    for dim in (-1, -2):
        out = img
        for d in range(1, reach + 1):
            drop = curvature * d * d
            out = torch.maximum(out, torch.maximum(_shift(img, d, dim), _shift(img, -d, dim)) - drop)
        img = out
    return img


def _rows_conv(img: torch.Tensor, kernel: torch.Tensor, left: int, right: int, dim: int) -> torch.Tensor:
    """Correlate every line of ``img`` along ``dim`` (-1 or -2) with ``kernel``, edges repeated (left/right pad)."""
    moved = img.movedim(dim, -1)
    flat = moved.reshape(-1, 1, moved.shape[-1])
    padded = F.pad(flat, (left, right), mode="replicate")
    out = F.conv1d(padded, kernel.to(img).view(1, 1, -1)).reshape(moved.shape)
    return out.movedim(-1, dim)


def feedback_lag(img: torch.Tensor, tau: float, retrace: bool = False) -> torch.Tensor:
    """First-order low-pass of each line along the fast axis, causal in the scan direction (``tau`` pixels)."""
    if tau <= 0:
        return img
    taps = math.ceil(6 * tau) + 1
    k = np.exp(-np.arange(taps) / tau)
    kernel = torch.from_numpy((k / k.sum())[::-1].copy())  # out[x] = sum_j k[j] img[x - j]
    if retrace:
        return _rows_conv(img.flip(-1), kernel, taps - 1, 0, -1).flip(-1)
    return _rows_conv(img, kernel, taps - 1, 0, -1)


def _gaussian(sigma: float) -> np.ndarray:
    """A normalized Gaussian of ``sigma`` pixels sampled on the pixel grid (a delta below 0.3 px)."""
    if sigma < 0.3:
        return np.ones(1)
    r = math.ceil(3 * sigma)
    g = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    return g / g.sum()


def _box(width: float) -> np.ndarray:
    """A centred box of ``width`` pixels (fractional edges by overlap with each pixel), normalized."""
    if width <= 1.0:
        return np.ones(1)
    r = math.ceil(width / 2)
    d = np.arange(-r, r + 1)
    overlap = np.clip(np.minimum(d + 0.5, width / 2) - np.maximum(d - 0.5, -width / 2), 0, None)
    return overlap / overlap.sum()


def probe_response(img: torch.Tensor, box: float, sigma: float) -> torch.Tensor:
    """Blur the last two dims: a box of ``box`` px and a Gaussian along x, the Gaussian along y (pixels)."""
    gx = np.convolve(_box(box), _gaussian(sigma))
    gy = _gaussian(sigma)
    for kernel, dim in ((gx, -1), (gy, -2)):
        if len(kernel) > 1:
            r = len(kernel) // 2
            img = _rows_conv(img, torch.from_numpy(kernel), r, r, dim)
    return img


def pink_noise(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    """Unit-std 1/f noise over the last two dims read in scan order (line after line), independent per image."""
    n_rows, n_cols = shape[-2:]
    n = n_rows * n_cols
    freq = torch.fft.rfftfreq(n, dtype=torch.float64)
    amp = torch.zeros_like(freq)
    amp[1:] = freq[1:].rsqrt()
    spec = torch.complex(torch.randn((*shape[:-2], len(freq)), generator=generator, dtype=torch.float64),
                         torch.randn((*shape[:-2], len(freq)), generator=generator, dtype=torch.float64))
    noise = torch.fft.irfft(spec * amp, n=n)
    noise = (noise - noise.mean(-1, keepdim=True)) / noise.std(-1, keepdim=True).clamp_min(1e-12)
    return noise.reshape(shape)


def acquire(hr: torch.Tensor, scale: int, acq: Acquisition,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """The ``ceil(H / s) x ceil(W / s)`` scan of ``hr`` ([..., H, W]) recorded under ``acq``, noise from ``generator``.

    Order of the physics: tip dilation, feedback lag, detector box and probe response (all on the fine surface),
    sampling at the line and pixel positions (drift included), then the noise of the recorded signal.
    """
    s = int(scale)
    img = tip_dilate(hr, acq.tip / s**2, min(max(8, TIP_REACH_LR * s), max(hr.shape[-2:]) - 1))
    img = feedback_lag(img, acq.lag * s, acq.retrace)
    img = probe_response(img, acq.fast_width * s, acq.probe_sigma * s)
    lr = point_sample(img, *scan_positions(tuple(hr.shape), s, acq.drift * s, acq.drift_angle, acq.line_offset * s))
    noise = torch.zeros((), dtype=lr.dtype, device=lr.device)
    if acq.white:
        noise = noise + acq.white * torch.randn(lr.shape, generator=generator).to(lr)
    if acq.line:
        noise = noise + acq.line * torch.randn((*lr.shape[:-1], 1), generator=generator).to(lr)
    if acq.pink:
        noise = noise + acq.pink * pink_noise(tuple(lr.shape), generator).to(lr)
    return lr + noise


class FixedAcquisition:
    """A degradation that records every image under one acquisition setting (keyword arguments of Acquisition)."""

    def __init__(self, **setting: float | bool) -> None:
        bad = {k: v for k, v in setting.items() if not isinstance(v, int | float)}  # bool is an int
        if bad:
            raise ValueError(f"acquisition settings must be numbers, got {bad}")
        self.acquisition = Acquisition(**setting)

    def downscale(self, hr: torch.Tensor, scale: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The scan of ``hr`` at ``scale`` under the fixed setting."""
        return acquire(hr, scale, self.acquisition, generator)


class AcquisitionDegradation:
    """The randomized training family: each call draws a setting, each effect on with its probability.

    Every argument but the probabilities is a number or a ``[lo, hi]`` range (``afm_sr.ranges``) of the
    ``Acquisition`` field of that name; ``tip_prob``, ``lag_prob`` and ``retrace_prob`` switch the tip dilation and
    the feedback lag on and the scan direction over per call. The ranges live in conf/degradation/robust.yaml only.
    """

    def __init__(self, tip: Range, tip_prob: float, fast_width: Range, probe_sigma: Range, line_offset: Range,
                 lag: Range, lag_prob: float, retrace_prob: float, white: Range, line: Range, pink: Range,
                 drift: Range) -> None:
        self.ranges = {"tip": as_range(tip), "fast_width": as_range(fast_width),
                       "probe_sigma": as_range(probe_sigma), "line_offset": as_range(line_offset),
                       "lag": as_range(lag), "white": as_range(white), "line": as_range(line),
                       "pink": as_range(pink), "drift": as_range(drift)}
        self.prob = {"tip": float(tip_prob), "lag": float(lag_prob), "retrace": float(retrace_prob)}
        bad = {k: p for k, p in self.prob.items() if not 0.0 <= p <= 1.0}
        if bad:
            raise ValueError(f"probabilities {bad} must lie in [0, 1]")

    def sample(self, generator: torch.Generator | None = None) -> Acquisition:
        """One setting drawn from the family."""
        uniform = uniform_source(generator)
        setting = {name: draw(uniform, value) for name, value in self.ranges.items()}
        for name in ("tip", "lag"):
            if uniform() >= self.prob[name]:
                setting[name] = 0.0
        acq = Acquisition(**setting, drift_angle=2 * math.pi * uniform())
        return replace(acq, retrace=uniform() < self.prob["retrace"])

    def downscale(self, hr: torch.Tensor, scale: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The scan of ``hr`` at ``scale`` under a setting drawn for this call."""
        return acquire(hr, scale, self.sample(generator), generator)
