"""What an AFM does to a surface: tip convolution, drift, line offsets, noise, tilt and bow.

Each artefact is a pure NumPy function of (rng, heights, ...) so it can be tested alone; ``Instrument``
composes them into the ``artefacts`` callable of a ``SyntheticMaterial``. Z-artefact amplitudes are
fractions of the surface's RMS roughness, so one instrument setting suits every material.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from afm_sr.ranges import Range, draw


def spectral_noise(rng: np.random.Generator, shape: tuple[int, ...], exponent: float = 0.0,
                   low: float | None = None, high: float | None = None) -> np.ndarray:
    """Draw zero-mean, unit-std Gaussian noise with power ~ 1/f**exponent, optionally band-limited.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random source.
    shape : tuple of int
        Output shape (1-D for time series, 2-D for surfaces).
    exponent : float
        Spectral exponent beta of the power spectrum (0 white, 1 pink, 2..4 rough surfaces).
    low : float, optional
        Soft high-pass limit in cycles per pixel (Gaussian roll-off); None leaves it open.
    high : float, optional
        Soft low-pass limit in cycles per pixel (Gaussian roll-off); None leaves it open.
    """
    spectrum = np.fft.rfftn(rng.standard_normal(shape))
    grids = [np.fft.fftfreq(n) for n in shape[:-1]] + [np.fft.rfftfreq(shape[-1])]
    f2 = sum(g**2 for g in np.meshgrid(*grids, indexing="ij", sparse=True))
    f2 = np.where(f2 == 0, np.inf, f2)
    gain = f2 ** (-exponent / 4.0)
    if high is not None:
        gain = gain * np.exp(-f2 / (2 * high**2))
    if low is not None:
        gain = gain * -np.expm1(-f2 / (2 * low**2))
    out = np.fft.irfftn(spectrum * gain, s=shape)
    std = out.std()
    return out / std if std > 0 else out


def tip_profile(radius_px: float, half_angle_deg: float, max_height: float, max_px: int) -> np.ndarray:
    """Height of a sphere-capped cone tip above its apex on a pixel grid (NaN outside the footprint).

    The footprint stops where the tip rises above ``max_height`` (it cannot touch the surface there)
    or at ``max_px`` pixels from the axis, which keeps the dilation cheap.
    """
    alpha = np.deg2rad(half_angle_deg)
    r_t = radius_px * np.cos(alpha)
    z_t = radius_px * (1 - np.sin(alpha))
    u = np.arange(-max_px, max_px + 1, dtype=np.float64)
    r = np.hypot(u[:, None], u[None, :])
    sphere = radius_px - np.sqrt(np.clip(radius_px**2 - r**2, 0, None))
    cone = z_t + (r - r_t) / np.tan(alpha)
    z = np.where(r <= r_t, sphere, cone)
    z[(z > max_height) | (r > max_px)] = np.nan
    return z


def tip_dilate(heights: np.ndarray, pixel_size_m: float, radius_m: float, half_angle_deg: float = 20.0,
               max_px: int = 8) -> np.ndarray:
    """Record the surface with a finite tip: grey-scale dilation of the surface by the tip (never lower)."""
    if radius_m <= 0:
        return heights
    ptp = float(np.ptp(heights)) / pixel_size_m
    tip = tip_profile(radius_m / pixel_size_m, half_angle_deg, ptp, max_px)
    footprint = np.isfinite(tip)
    rows, cols = np.nonzero(footprint.any(axis=1))[0], np.nonzero(footprint.any(axis=0))[0]
    tip = tip[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    footprint = footprint[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    structure = np.where(footprint, -np.nan_to_num(tip) * pixel_size_m, 0.0)
    return ndimage.grey_dilation(heights, footprint=footprint, structure=structure, mode="nearest")


def drift(heights: np.ndarray, shift_x_px: float = 0.0, stretch_y_px: float = 0.0, creep_px: float = 0.0,
          creep_lines: float = 10.0) -> np.ndarray:
    """Resample where a drifting, creeping scanner really was while recording each line.

    Thermal drift shears the fast axis by ``shift_x_px`` and stretches the slow axis by ``stretch_y_px``
    over the whole frame; piezo creep adds an x offset ``creep_px`` that decays over ``creep_lines`` rows.
    """
    if shift_x_px == 0 and stretch_y_px == 0 and creep_px == 0:
        return heights
    ny, nx = heights.shape
    r = np.arange(ny, dtype=np.float64)[:, None]
    c = np.arange(nx, dtype=np.float64)[None, :]
    x = c + shift_x_px * r / max(ny - 1, 1) + creep_px * np.exp(-r / max(creep_lines, 1e-9))
    y = r * (1 + stretch_y_px / max(ny - 1, 1)) + 0 * c
    return ndimage.map_coordinates(heights, [y, x], order=3, mode="mirror")


def line_offsets(rng: np.random.Generator, n_lines: int, std: float, walk: float = 0.5) -> np.ndarray:
    """Per-scan-line height offsets: a mix of independent jumps and a slow random walk, total std ``std``."""
    if std == 0:
        return np.zeros(n_lines)
    jumps = rng.standard_normal(n_lines)
    walk_part = np.cumsum(rng.standard_normal(n_lines))
    walk_part = (walk_part - walk_part.mean()) / (walk_part.std() + 1e-12)
    out = np.sqrt(1 - walk) * jumps + np.sqrt(walk) * walk_part
    return std * out / (out.std() + 1e-12)


def noisy_lines(rng: np.random.Generator, shape: tuple[int, int], count: int, amplitude: float) -> np.ndarray:
    """Streaks: ``count`` line segments where the tip lost track, with an offset and extra noise."""
    out = np.zeros(shape)
    if count <= 0 or amplitude == 0:
        return out
    ny, nx = shape
    rows = rng.integers(0, ny, count)
    start = rng.integers(0, nx, count)
    length = rng.integers(nx // 8, nx + 1, count)
    c = np.arange(nx)[None, :]
    mask = (c >= start[:, None]) & (c < (start + length)[:, None])
    offset = amplitude * rng.uniform(-1, 1, count)[:, None]
    streak = mask * (offset + 0.5 * amplitude * rng.standard_normal((count, nx)))
    np.add.at(out, rows, streak)
    return out


def tilt_bow(shape: tuple[int, int], tilt_x: float, tilt_y: float, bow: float) -> np.ndarray:
    """Return a plane plus the scanner's parabolic bow, amplitudes being the rise across the frame."""
    ny, nx = shape
    y = np.linspace(-0.5, 0.5, ny)[:, None]
    x = np.linspace(-0.5, 0.5, nx)[None, :]
    return tilt_x * x + tilt_y * y + bow * (4 * x**2 + 4 * y**2 - 2 / 3)


def scan_noise(rng: np.random.Generator, shape: tuple[int, int], pink: float, white: float) -> np.ndarray:
    """1/f noise along the scan's time order (fast axis then slow axis) plus white noise."""
    out = np.zeros(shape)
    if pink:
        out += pink * spectral_noise(rng, (shape[0] * shape[1],), exponent=1.0).reshape(shape)
    if white:
        out += white * rng.standard_normal(shape)
    return out


@dataclass(kw_only=True)
class Instrument:
    """A configurable AFM: the ``artefacts`` callable of a SyntheticMaterial.

    Every parameter is a fixed value or a [lo, hi] range drawn per image; 0 or None switches that
    artefact off. Z amplitudes (``line_offset``, ``noisy_line_amplitude``, ``pink_noise``, ``white_noise``,
    ``tilt``, ``bow``) are fractions of the tip-convolved surface's RMS roughness. The ranges training draws
    from are written once, in ``conf/instrument/default.yaml``.

    Parameters
    ----------
    tip_radius_m : apex radius of the tip (meters); 0 disables tip convolution.
    tip_half_angle_deg : half opening angle of the tip's cone.
    drift_px : thermal drift over the frame, in pixels (x shear and y stretch).
    creep_px : piezo creep x offset at the first line, decaying over ``creep_lines`` rows.
    line_offset : std of per-line offsets.
    noisy_lines : how many streaks (rounded down).
    noisy_line_amplitude : offset scale of a streak.
    pink_noise, white_noise : std of the 1/f (scan-time) and white noise.
    tilt, bow : plane and parabolic bow amplitude across the frame.
    """

    tip_radius_m: Range
    tip_half_angle_deg: Range
    drift_px: Range
    creep_px: Range
    creep_lines: Range
    line_offset: Range
    noisy_lines: Range
    noisy_line_amplitude: Range
    pink_noise: Range
    white_noise: Range
    tilt: Range
    bow: Range

    def __call__(self, rng: np.random.Generator, heights: np.ndarray, pixel_size_m: float) -> np.ndarray:
        """Return the measured image of ``heights`` (meters, square pixels of ``pixel_size_m``)."""
        radius, half_angle = draw(rng.random, self.tip_radius_m), draw(rng.random, self.tip_half_angle_deg)
        h = tip_dilate(heights, pixel_size_m, radius, half_angle)
        d, angle = draw(rng.random, self.drift_px), rng.uniform(0, 2 * np.pi)
        creep, creep_lines = draw(rng.random, self.creep_px), draw(rng.random, self.creep_lines)
        h = drift(h, d * np.cos(angle), d * np.sin(angle), creep, creep_lines)
        rms = float(h.std()) or 1.0
        z = line_offsets(rng, h.shape[0], draw(rng.random, self.line_offset))[:, None]
        streaks, streak_amplitude = int(draw(rng.random, self.noisy_lines)), draw(rng.random, self.noisy_line_amplitude)
        z = z + noisy_lines(rng, h.shape, streaks, streak_amplitude)
        z = z + scan_noise(rng, h.shape, draw(rng.random, self.pink_noise), draw(rng.random, self.white_noise))
        t = draw(rng.random, self.tilt)
        angle = rng.uniform(0, 2 * np.pi)
        z = z + tilt_bow(h.shape, t * np.cos(angle), t * np.sin(angle), draw(rng.random, self.bow))
        return h + rms * z
