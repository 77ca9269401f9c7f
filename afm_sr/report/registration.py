"""Sub-pixel registration of two scans of the same area (phase correlation), so metrics compare like with like.

Two real scans of one area never line up exactly: thermal drift and piezo creep move the area between
scans. Before PSNR/SSIM of an enhanced low-resolution scan against a high-resolution scan, the shift
between them is measured (phase correlation refined by an upsampled DFT around the peak, Guizar-Sicairos
et al., Opt. Lett. 33, 156, 2008) and undone, and only the overlap is compared.

A zoom (a later scan of part of the area at finer pixels) is located in the larger scan by ``locate_window``:
normalized cross-correlation of the zoom, bicubic-downscaled to the coarse pixel size, over the coarse scan
(a few scale errors tried), then refined for sub-pixel position, scale and rotation. Only bicubic resampling
and the two scans take part, so the registration cannot favour any model's output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage, optimize, signal

from afm_sr.degrade import imresize
from afm_sr.preprocess import plane_level


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


@dataclass(frozen=True)
class Window:
    """Where a zoom's pixel grid lies in a coarse scan: coarse (row, col) = origin + step * R(angle) (row, col).

    ``step`` is coarse pixels per zoom pixel (the zoom's pixel size over the coarse one); ``angle_deg`` turns
    the zoom's grid counter-clockwise in (row, col) coordinates; ``origin`` is where zoom pixel (0, 0) lies.
    """

    origin: tuple[float, float]
    step: float
    angle_deg: float = 0.0

    def to_coarse(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coarse-scan (row, col) coordinates of zoom pixel coordinates ``rows``, ``cols`` (any shape)."""
        a = math.radians(self.angle_deg)
        c, s = math.cos(a) * self.step, math.sin(a) * self.step
        rows, cols = np.asarray(rows, dtype=np.float64), np.asarray(cols, dtype=np.float64)
        return self.origin[0] + c * rows - s * cols, self.origin[1] + s * rows + c * cols

    def footprint(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Coarse (rows, cols) of the four corner pixel centres of a zoom of ``shape``."""
        ny, nx = shape
        return self.to_coarse(np.array([0, 0, ny - 1, ny - 1]), np.array([0, nx - 1, 0, nx - 1]))


@dataclass(frozen=True)
class WindowFit:
    """A located zoom: its ``window``, the NCC there, the best NCC elsewhere, and the share inside the scan."""

    window: Window
    ncc: float
    runner_up: float
    coverage: float


def ncc_map(image: np.ndarray, template: np.ndarray, min_overlap: float = 1.0) -> np.ndarray:
    """Normalized cross-correlation of ``template`` at every position where it overlaps ``image`` enough.

    With ``min_overlap`` 1 entry (i, j) is the Pearson correlation of ``template`` with
    ``image[i:i+th, j:j+tw]`` (Lewis, 'Fast normalized cross-correlation', 1995). Below 1 the template may
    hang over the image's edges: entry (i, j) is then its top-left corner at (i - th + 1, j - tw + 1), and
    the correlation is taken over the overlap only (Padfield, 'Masked object registration in the Fourier
    domain', 2012), -1 where the overlap is under ``min_overlap`` of the template. 0 where a patch is flat.
    """
    img, tpl = np.asarray(image, dtype=np.float64), np.asarray(template, dtype=np.float64)
    th, tw = tpl.shape
    pad = (th - 1, tw - 1) if min_overlap < 1 else (0, 0)
    if not pad[0] and (th > img.shape[0] or tw > img.shape[1]):
        raise ValueError(f"a {th}x{tw} template does not fit in a {img.shape[0]}x{img.shape[1]} image")
    mask = np.pad(np.ones_like(img), [(p, p) for p in pad])
    img = np.pad(img - img.mean(), [(p, p) for p in pad])
    tpl = tpl - tpl.mean()

    def corr(a: np.ndarray, t: np.ndarray) -> np.ndarray:
        return signal.fftconvolve(a, t[::-1, ::-1], mode="valid")

    ones = np.ones_like(tpl)
    n = np.maximum(np.rint(corr(mask, ones)), 1.0)
    s_i, s_t = corr(img, ones), corr(mask, tpl)
    cov = corr(img, tpl) - s_i * s_t / n
    var_i = np.clip(corr(img**2, ones) - s_i**2 / n, 0.0, None)
    var_t = np.clip(corr(mask, tpl**2) - s_t**2 / n, 0.0, None)
    den = np.sqrt(var_i * var_t)
    scores = np.where(den > 1e-12 * max(float(den.max()), 1e-300), cov / np.where(den > 0, den, 1.0), 0.0)
    return np.where(n >= min_overlap * th * tw - 0.5, np.clip(scores, -1.0, 1.0), -1.0)


def _zoom_coordinates(zoom_shape: tuple[int, int], template_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Zoom pixel coordinates of the centres of a MATLAB-bicubic downscaling of the zoom to ``template_shape``."""
    (my, mx), (ty, tx) = zoom_shape, template_shape
    rows = (np.arange(ty) + 0.5) * my / ty - 0.5
    cols = (np.arange(tx) + 0.5) * mx / tx - 0.5
    return np.meshgrid(rows, cols, indexing="ij")


def _plane_free_correlation(a: np.ndarray, b: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> float:
    """Correlation of ``a`` and ``b`` after a least-squares plane in (rows, cols) is taken out of each.

    A zoom is levelled on its own while the coarse patch keeps the local slope of the surface: without
    taking the plane out of both, that slope lowers and biases the match.
    """
    q, _ = np.linalg.qr(np.stack([np.ones_like(rows), rows, cols], axis=1))
    a, b = a - q @ (q.T @ a), b - q @ (q.T @ b)
    den = math.sqrt(float((a**2).sum() * (b**2).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def _refine(coefs: np.ndarray, template: np.ndarray, grid: tuple[np.ndarray, np.ndarray], start: Window,
            rotate: bool) -> tuple[Window, float]:
    """Maximise the correlation (planes taken out) of ``template`` with the coarse scan sampled on the window."""
    ny, nx = coefs.shape
    flat, grid_rows, grid_cols = template.ravel(), grid[0].ravel(), grid[1].ravel()

    def unpack(p: np.ndarray) -> Window:
        return Window((float(p[0]), float(p[1])), start.step * math.exp(float(p[2])), float(p[3]) if rotate else 0.0)

    def cost(p: np.ndarray) -> float:
        ys, xs = unpack(p).to_coarse(*grid)
        inside = ((ys >= 0) & (ys <= ny - 1) & (xs >= 0) & (xs <= nx - 1)).ravel()
        if inside.mean() < 0.5:
            return 1.0
        sampled = ndimage.map_coordinates(coefs, [ys.ravel()[inside], xs.ravel()[inside]], order=3,
                                          prefilter=False)
        return -_plane_free_correlation(flat[inside], sampled, grid_rows[inside], grid_cols[inside])

    p0 = np.array([*start.origin, 0.0, start.angle_deg] if rotate else [*start.origin, 0.0])
    simplex = p0 + np.diag([0.5, 0.5, 0.01, 0.5][: p0.size])
    res = optimize.minimize(cost, p0, method="Nelder-Mead",
                            options={"initial_simplex": np.vstack([p0, simplex]), "xatol": 1e-3, "fatol": 1e-7,
                                     "maxiter": 2000})
    return unpack(res.x), -float(res.fun)


def locate_window(coarse: np.ndarray, zoom: np.ndarray, step: float, prior: tuple[float, float] | None = None,
                  radius: float | None = None, scale_errors: tuple[float, ...] = (0.94, 0.97, 1.0, 1.03, 1.06),
                  rotate: bool = True, min_overlap: float = 0.6) -> WindowFit:
    """Find where ``zoom`` (finer pixels, ``step`` coarse pixels per zoom pixel) lies inside ``coarse``.

    Both scans are plane-levelled (row alignment would change them differently), the zoom is downscaled to the
    coarse pixel size by MATLAB bicubic (``afm_sr.degrade.imresize``) at each of ``scale_errors`` times the
    nominal ``step``, and its normalized
    cross-correlation over the coarse scan picks the integer position and scale; the position (to a fraction
    of a pixel), scale and (with ``rotate``) angle are then refined by maximising the correlation with the
    coarse scan sampled by cubic splines. ``prior`` (coarse row, col of the zoom's centre, e.g. from scan
    offsets in the files' metadata) with ``radius`` (coarse px) limits the search. The zoom may hang over the
    scan's edge by up to 1 - ``min_overlap`` of its area (``coverage`` says how much). ``runner_up`` is the best
    correlation at least a template's half-size away from the peak: close to ``ncc`` means an ambiguous match.
    """
    c, z = plane_level(coarse), plane_level(zoom)
    if step <= 0 or step >= 1:
        raise ValueError(f"a zoom has finer pixels than the scan it zooms into: step {step} must lie in (0, 1)")
    zt = torch.from_numpy(z)
    best: tuple[float, np.ndarray, tuple[int, int], np.ndarray] | None = None
    for k in scale_errors:
        size = (max(4, round(z.shape[0] * step * k)), max(4, round(z.shape[1] * step * k)))
        if min_overlap >= 1 and (size[0] > c.shape[0] or size[1] > c.shape[1]):
            continue
        template = imresize(zt, size=size).numpy()
        scores = ncc_map(c, template, min_overlap)
        shift = (size[0] - 1, size[1] - 1) if min_overlap < 1 else (0, 0)  # map index - shift = top-left corner
        if prior is not None and radius is not None:
            rows = np.arange(scores.shape[0])[:, None] - shift[0] + (size[0] - 1) / 2
            cols = np.arange(scores.shape[1])[None, :] - shift[1] + (size[1] - 1) / 2
            scores = np.where(np.hypot(rows - prior[0], cols - prior[1]) <= radius, scores, -1.0)
        peak = np.unravel_index(int(np.argmax(scores)), scores.shape)
        if best is None or scores[peak] > best[0]:
            best = (float(scores[peak]), template, (int(peak[0]) - shift[0], int(peak[1]) - shift[1]), scores)
    if best is None:
        raise ValueError(f"a {zoom.shape[0]}x{zoom.shape[1]} zoom at step {step} is larger than the "
                         f"{coarse.shape[0]}x{coarse.shape[1]} scan")
    _, template, (py, px), scores = best
    sy, sx = template.shape[0] / z.shape[0], template.shape[1] / z.shape[1]
    start = Window((py - 0.5 + 0.5 * sy, px - 0.5 + 0.5 * sx), (sy + sx) / 2)
    hy, hx = template.shape[0] // 2, template.shape[1] // 2
    my, mx = (py + template.shape[0] - 1, px + template.shape[1] - 1) if min_overlap < 1 else (py, px)
    away = scores.copy()
    away[max(0, my - hy):my + hy + 1, max(0, mx - hx):mx + hx + 1] = -1.0
    grid = _zoom_coordinates(z.shape, template.shape)
    window, ncc = _refine(ndimage.spline_filter(c, order=3), template, grid, start, rotate)
    ys, xs = window.to_coarse(*np.meshgrid(np.linspace(0, z.shape[0] - 1, 32), np.linspace(0, z.shape[1] - 1, 32),
                                           indexing="ij"))
    coverage = float(np.mean((ys >= 0) & (ys <= c.shape[0] - 1) & (xs >= 0) & (xs <= c.shape[1] - 1)))
    return WindowFit(window, ncc, float(away.max()) if away.size else -1.0, coverage)


def resample_to_zoom(upscaled: np.ndarray, scale: int, window: Window, corner: tuple[int, int],
                     zoom_shape: tuple[int, int]) -> np.ndarray:
    """An x``scale`` upscaling of a coarse-scan box whose top-left pixel is ``corner``, on the zoom's grid.

    First MATLAB bicubic ``imresize`` to the zoom's pixel size (antialiased where that shrinks), then the
    near-identity rest of ``window`` (sub-pixel shift, scale error, turn) by cubic splines: the same two
    steps for every method, so none is favoured. Output pixel j of an x``scale`` upscaling lies at coarse
    coordinate (j + 0.5) / scale - 0.5, as ``imresize`` and ``afm_sr.enhance`` place it.
    """
    factor = 1 / (scale * window.step)
    size = (max(2, round(upscaled.shape[0] * factor)), max(2, round(upscaled.shape[1] * factor)))
    resized = imresize(torch.from_numpy(np.asarray(upscaled, dtype=np.float64)), size=size).numpy()
    fy, fx = size[0] / upscaled.shape[0] * scale, size[1] / upscaled.shape[1] * scale  # resized px per coarse px
    rows, cols = np.meshgrid(np.arange(zoom_shape[0]), np.arange(zoom_shape[1]), indexing="ij")
    ys, xs = window.to_coarse(rows, cols)
    coords = [(ys - corner[0] + 0.5) * fy - 0.5, (xs - corner[1] + 0.5) * fx - 0.5]
    return ndimage.map_coordinates(resized, coords, order=3, mode="nearest")
