"""Sub-pixel registration of two scans of the same area (phase correlation), so metrics compare like with like.

Two real scans of one area never line up exactly: thermal drift and piezo creep move the area between
scans. Before PSNR/SSIM of an enhanced low-resolution scan against a high-resolution scan, the shift
between them is measured (phase correlation refined by an upsampled DFT around the peak, Guizar-Sicairos
et al., Opt. Lett. 33, 156, 2008) and undone, and only the overlap is compared.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage


def _upsampled_dft(spectrum: np.ndarray, size: int, factor: int, offsets: np.ndarray) -> np.ndarray:
    """Inverse DFT of ``spectrum`` on a ``size`` x ``size`` grid, ``factor`` times finer, starting at ``offsets``."""
    out = spectrum
    for axis in (1, 0):  # contract the last axis each time; two passes restore the (row, col) order
        kernel = np.exp(2j * np.pi * np.outer(np.arange(size) - offsets[axis], np.fft.fftfreq(spectrum.shape[axis],
                                                                                              factor)))
        out = np.tensordot(kernel, out, axes=(1, -1))
    return out


def _correlation_peak(reference: np.ndarray, moving: np.ndarray, upsample: int) -> np.ndarray:
    """One pass: the (dy, dx) peak of the windowed cross-correlation, refined to 1/``upsample`` px."""
    taper = np.outer(np.hanning(reference.shape[0]), np.hanning(reference.shape[1]))
    ref, mov = ((a - a.mean()) * taper for a in (reference, moving))
    product = np.fft.fft2(ref) * np.conj(np.fft.fft2(mov))
    corr = np.abs(np.fft.ifft2(product))
    shape = np.array(corr.shape, dtype=np.float64)
    peak = np.array(np.unravel_index(np.argmax(corr), corr.shape), dtype=np.float64)
    peak[peak > shape // 2] -= shape[peak > shape // 2]
    if upsample > 1:
        peak = np.round(peak * upsample) / upsample
        size = math.ceil(1.5 * upsample)
        centre = size // 2
        fine = np.abs(_upsampled_dft(product, size, upsample, centre - peak * upsample))
        peak += (np.array(np.unravel_index(np.argmax(fine), fine.shape), dtype=np.float64) - centre) / upsample
    return peak


def phase_correlation(reference: np.ndarray, moving: np.ndarray, upsample: int = 20,
                      iterations: int = 3) -> tuple[float, float]:
    """The (dy, dx) shift, in pixels to 1/``upsample``, that moves ``moving`` onto ``reference``.

    ``apply_shift(moving, phase_correlation(reference, moving))`` lines up with ``reference``; both images
    have one shape. Each pass correlates Hann-windowed images in Fourier space (cross-power spectrum
    with its magnitude kept, as Guizar-Sicairos et al.: whitening it lets white noise win on smooth AFM
    topography) and refines the peak with an upsampled DFT. The window pulls the peak towards zero, so
    later passes measure what is left after undoing the shift found so far.
    """
    ref, mov = (np.asarray(a, dtype=np.float64) for a in (reference, moving))
    if ref.shape != mov.shape or ref.ndim != 2:
        raise ValueError(f"phase_correlation needs two 2-D images of one shape, got {ref.shape} and {mov.shape}")
    total = np.zeros(2)
    for _ in range(max(1, iterations)):
        total += _correlation_peak(ref, apply_shift(mov, total) if total.any() else mov, upsample)
    return float(total[0]), float(total[1])


def apply_shift(image: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """Translate ``image`` by (dy, dx) pixels with cubic spline interpolation (edges extended by reflection)."""
    return ndimage.shift(np.asarray(image, dtype=np.float64), shift, order=3, mode="reflect")


def overlap(shape: tuple[int, int], shift: tuple[float, float], margin: int = 0) -> tuple[slice, slice]:
    """Rows and columns that hold real data in both images after ``apply_shift``, less ``margin`` px per side."""
    out = []
    for n, d in zip(shape, shift, strict=True):
        lo = margin + max(0, math.ceil(d))
        hi = n - margin - max(0, math.ceil(-d))
        if hi - lo < 1:
            raise ValueError(f"shift {shift} leaves no overlap in a {shape[0]}x{shape[1]} image")
        out.append(slice(lo, hi))
    return out[0], out[1]
