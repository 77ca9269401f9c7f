"""Figures as PNG: comparison panels on one colour scale, with scale bar, cross-sections and error maps."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def _nice_length(length: float) -> float:
    """A 1/2/5 x 10^k length close to ``length`` for a scale bar."""
    exp = np.floor(np.log10(length))
    for m in (5, 2, 1):
        if m * 10**exp <= length:
            return float(m * 10**exp)
    return float(10**exp)


def _bar_label(meters: float) -> str:
    """'500 nm' or '2 um' for a scale bar."""
    return f"{meters * 1e6:g} µm" if meters >= 1e-6 else f"{meters * 1e9:g} nm"


def comparison_panel(images: Mapping[str, np.ndarray], scan_size_m: float | None = None, unit: str = "nm",
                     title: str = "", row: int | None = None) -> Figure:
    """Images side by side on the HR's colour scale (the last image is the reference), in physical extent.

    Every image is drawn over the same physical area whatever its pixel count, so an LR scan and its
    upscaled versions line up. With ``row``, a second line of axes shows that row's cross-section.
    """
    names = list(images)
    ref = np.asarray(images[names[-1]])
    vmin, vmax = np.percentile(ref, [0.5, 99.5])
    n = len(names)
    fig, axes = plt.subplots(2 if row is not None else 1, n, figsize=(3.2 * n, 6.2 if row is not None else 3.4),
                             squeeze=False, constrained_layout=True)
    span = scan_size_m * 1e6 if scan_size_m is not None else float(ref.shape[1])  # µm, or HR pixels
    extent = (0, span, 0, span * ref.shape[0] / ref.shape[1])
    for ax, name in zip(axes[0], names, strict=False):
        im = ax.imshow(np.asarray(images[name]), cmap="afmhot", vmin=vmin, vmax=vmax, extent=extent,
                       interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        if scan_size_m is not None:
            bar = _nice_length(scan_size_m / 4)
            x0 = 0.05 * scan_size_m * 1e6
            y0 = 0.06 * scan_size_m * 1e6
            ax.plot([x0, x0 + bar * 1e6], [y0, y0], color="white", lw=3)
            ax.text(x0, y0 * 1.6, _bar_label(bar), color="white", fontsize=8)
        if row is not None:
            ax.axhline((1 - (row + 0.5) / ref.shape[0]) * extent[3], color="cyan", lw=0.6, ls="--")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label=unit)
    if row is not None:
        _cross_sections(axes[1], images, row, ref.shape[0], scan_size_m, unit)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def _cross_sections(axes: np.ndarray, images: Mapping[str, np.ndarray], row: int, ref_rows: int,
                    scan_size_m: float | None, unit: str) -> None:
    """Profiles through the same physical row of every image, each overlaid on the reference's."""
    names = list(images)
    ref = np.asarray(images[names[-1]])
    width = scan_size_m * 1e6 if scan_size_m else ref.shape[1]
    xr = (np.arange(ref.shape[1]) + 0.5) / ref.shape[1] * width
    for ax, name in zip(axes, names, strict=False):
        a = np.asarray(images[name])
        r = min(int(row * a.shape[0] / ref_rows), a.shape[0] - 1)
        x = (np.arange(a.shape[1]) + 0.5) / a.shape[1] * width
        ax.plot(xr, ref[row], color="0.6", lw=1, label=names[-1])
        ax.plot(x, a[r], color="C0", lw=1, label=name)
        ax.set_xlabel("µm" if scan_size_m else "px")
        ax.set_ylabel(unit)
        ax.legend(fontsize=7, loc="upper right")


def error_maps(preds: Mapping[str, np.ndarray], reference: np.ndarray, unit: str = "nm",
               title: str = "") -> Figure:
    """|prediction - reference| for each method on one shared colour scale."""
    errs = {k: np.abs(np.asarray(v) - reference) for k, v in preds.items()}
    vmax = max(float(np.percentile(e, 99.5)) for e in errs.values()) or 1.0
    fig, axes = plt.subplots(1, len(errs), figsize=(3.2 * len(errs), 3.4), squeeze=False, constrained_layout=True)
    for ax, (name, e) in zip(axes[0], errs.items(), strict=False):
        im = ax.imshow(e, cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"|{name} - HR|  RMS {np.sqrt(np.mean(e**2)):.3g}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label=unit)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def to_png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    """Render and close a figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def save_png(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Save a figure atomically (temp file + rename) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(to_png_bytes(fig, dpi))
    tmp.replace(path)
    return path
