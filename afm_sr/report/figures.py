"""Figures as PNG: the paper's panels (one colour scale, scale bar), error maps, line profiles, 3-D views, gains."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from afm_sr.atomic import write_atomically


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


def _extent(shape: tuple[int, ...], scan_size_m: float | None) -> tuple[float, float, float, float]:
    """Image extent in µm (or in reference pixels without a scan size), so every image covers one area."""
    span = scan_size_m * 1e6 if scan_size_m is not None else float(shape[1])
    return (0, span, 0, span * shape[0] / shape[1])


def _show(ax: Axes, image: np.ndarray, extent: tuple[float, float, float, float], vmin: float, vmax: float,
          title: str, scan_size_m: float | None, cmap: str = "afmhot") -> AxesImage:
    """One map on a fixed colour scale over ``extent``, without ticks, with a scale bar when the size is known."""
    im = ax.imshow(np.asarray(image), cmap=cmap, vmin=vmin, vmax=vmax, extent=extent, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    if scan_size_m is not None:
        bar = _nice_length(scan_size_m / 4)
        x0, y0 = 0.05 * scan_size_m * 1e6, 0.06 * scan_size_m * 1e6
        outline = [patheffects.withStroke(linewidth=2.5, foreground="black")]
        ax.plot([x0, x0 + bar * 1e6], [y0, y0], color="white", lw=3, path_effects=outline)
        ax.text(x0, y0 * 1.6, _bar_label(bar), color="white", fontsize=8, path_effects=outline)
    return im


def comparison_panel(images: Mapping[str, np.ndarray], scan_size_m: float | None = None, unit: str = "nm",
                     title: str = "", row: int | None = None, reference: str | None = None,
                     zoom: tuple[tuple[float, float], tuple[float, float]] | None = None) -> Figure:
    """Images side by side on the reference's colour scale (default: the last image, the HR), in physical extent.

    Every image is drawn over the same physical area whatever its pixel count, so an LR scan and its
    upscaled versions line up. With ``row`` (in reference pixels), a second line of axes shows that row's
    cross-section in every image over the reference's. With ``zoom`` ((y0, y1), (x0, x1) as fractions of the
    image, from the top left), a last line shows that window of every image at its own full resolution, on the
    window's colour scale, and a box marks it on the maps.
    """
    names = list(images)
    ref_name = names[-1] if reference is None else reference
    ref = np.asarray(images[ref_name])
    vmin, vmax = np.percentile(ref, [0.5, 99.5])
    n, n_rows = len(names), 1 + (row is not None) + (zoom is not None)
    fig, axes = plt.subplots(n_rows, n, figsize=(3.2 * n, 0.6 + 2.9 * n_rows), squeeze=False, constrained_layout=True)
    extent = _extent(ref.shape, scan_size_m)
    for ax, name in zip(axes[0], names, strict=False):
        im = _show(ax, images[name], extent, vmin, vmax, name, scan_size_m)
        if row is not None:
            ax.axhline((1 - (row + 0.5) / ref.shape[0]) * extent[3], color="cyan", lw=0.6, ls="--")
        if zoom is not None:
            (y0, y1), (x0, x1) = zoom
            ax.add_patch(plt.Rectangle((x0 * extent[1], (1 - y1) * extent[3]), (x1 - x0) * extent[1],
                                       (y1 - y0) * extent[3], fill=False, edgecolor="cyan", lw=1))
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label=unit)
    if row is not None:
        _cross_sections(axes[1], images, row, ref_name, scan_size_m, unit)
    if zoom is not None:
        _zooms(axes[-1], images, zoom, unit)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def panel_grid(rows: Mapping[str, Mapping[str, np.ndarray]], scan_size_m: float | None = None, unit: str = "nm",
               title: str = "") -> Figure:
    """Figure-2 style grid: one row per label (e.g. scale), its images side by side, ONE colour scale for all.

    The colour scale is that of the reference, the last image of the first row (the HR map); every
    image covers the same physical area whatever its pixel count, with a scale bar.
    """
    first = next(iter(rows.values()))
    ref = np.asarray(list(first.values())[-1])
    vmin, vmax = np.percentile(ref, [0.5, 99.5])
    extent = _extent(ref.shape, scan_size_m)

    def cell(ax: Axes, label: str, name: str, image: np.ndarray) -> AxesImage:
        return _show(ax, image, extent, vmin, vmax, f"{label} {name}".strip(), scan_size_m)

    return _grid(rows, cell, (2.6, 0.8, 2.7, 0.0), 0.6, unit, title)


def _grid(rows: Mapping[str, Mapping[str, np.ndarray]], cell: Callable[[Axes, str, str, np.ndarray], AxesImage],
          size: tuple[float, float, float, float], shrink: float, unit: str, title: str) -> Figure:
    """One row of axes per label, ``cell`` drawing each image, unused axes hidden, one colour bar.

    ``size`` = (inches per column, extra width, inches per row, extra height) of the figure.
    """
    n_cols = max(len(r) for r in rows.values())
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(size[0] * n_cols + size[1], size[2] * len(rows) + size[3]),
                             squeeze=False, constrained_layout=True)
    for ax_row, (label, images) in zip(axes, rows.items(), strict=True):
        for ax, (name, image) in zip(ax_row, images.items(), strict=False):
            im = cell(ax, label, name, image)
        for ax in ax_row[len(images):]:
            ax.axis("off")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=shrink, label=unit)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def _profile(image: np.ndarray, row: int, ref_shape: tuple[int, ...], width: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions and heights along the image row that covers reference row ``row`` (any pixel count)."""
    a = np.asarray(image)
    r = min(int(row * a.shape[0] / ref_shape[0]), a.shape[0] - 1)
    return (np.arange(a.shape[1]) + 0.5) / a.shape[1] * width, a[r]


def _zooms(axes: np.ndarray, images: Mapping[str, np.ndarray], zoom: tuple[tuple[float, float], tuple[float, float]],
           unit: str) -> None:
    """One window (fractions of each image) of every image at its own pixels, on the last image's window scale."""
    def window(image: np.ndarray) -> np.ndarray:
        a = np.asarray(image)
        (ny, nx), ((y0, y1), (x0, x1)) = a.shape, zoom
        top, left = int(y0 * ny), int(x0 * nx)  # same size in every image: start + the span's pixels
        return a[top:top + max(1, round((y1 - y0) * ny)), left:left + max(1, round((x1 - x0) * nx))]

    crops = {name: window(image) for name, image in images.items()}
    vmin, vmax = np.percentile(list(crops.values())[-1], [0.5, 99.5])
    for ax, crop in zip(axes, crops.values(), strict=False):
        im = _show(ax, crop, (0, crop.shape[1], 0, crop.shape[0]), vmin, vmax,
                   f"zoom: {crop.shape[1]}x{crop.shape[0]} px", None)
    plt.colorbar(im, ax=list(axes), shrink=0.8, label=unit)


def _cross_sections(axes: np.ndarray, images: Mapping[str, np.ndarray], row: int, ref_name: str,
                    scan_size_m: float | None, unit: str) -> None:
    """Profiles through the same physical row of every image, each overlaid on the reference's."""
    names = list(images)
    ref = np.asarray(images[ref_name])
    width = scan_size_m * 1e6 if scan_size_m else ref.shape[1]
    for ax, name in zip(axes, names, strict=False):
        if name != ref_name:  # the reference's own plot needs no overlay (nor a second legend entry)
            ax.plot(*_profile(ref, row, ref.shape, width), color="0.6", lw=1, label=ref_name)
        ax.plot(*_profile(images[name], row, ref.shape, width), color="C0", lw=1, label=name)
        ax.set_xlabel("µm" if scan_size_m else "px")
        ax.set_ylabel(unit)
        ax.legend(fontsize=7, loc="upper right")


def profiles(rows: Mapping[str, Mapping[str, np.ndarray]], row: int, scan_size_m: float | None = None,
             unit: str = "nm", title: str = "") -> Figure:
    """Figure-4 style line profiles: per label (scale) one plot, every image's profile through one physical row.

    The last image of each label is its reference (HR), drawn in black; ``row`` counts pixels of the first
    label's reference, and labels whose references have other pixel counts use the same physical row. LR
    images are placed by their own pixel centres, so their coarse steps show.
    """
    fig, axes = plt.subplots(len(rows), 1, figsize=(9, 2.4 * len(rows)), squeeze=False, constrained_layout=True)
    position = (row + 0.5) / np.asarray(list(next(iter(rows.values())).values())[-1]).shape[0]
    for ax, (label, images) in zip(axes[:, 0], rows.items(), strict=True):
        names = list(images)
        ref = np.asarray(images[names[-1]])
        ref_row = int(position * ref.shape[0])
        width = scan_size_m * 1e6 if scan_size_m else ref.shape[1]
        for i, name in enumerate(names):
            last = i == len(names) - 1
            ax.plot(*_profile(images[name], ref_row, ref.shape, width), lw=1.6 if last else 1,
                    color="black" if last else f"C{i}", drawstyle="steps-mid" if name.startswith("LR") else "default",
                    label=name)
        ax.set_title(f"{label} row {ref_row} of {ref.shape[0]}".strip(), fontsize=10)
        ax.set_ylabel(unit)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes[-1, 0].set_xlabel("µm" if scan_size_m else "px")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def surfaces(images: Mapping[str, np.ndarray], scan_size_m: float | None = None, unit: str = "nm",
             max_px: int = 96, title: str = "") -> Figure:
    """3-D surface views side by side on one z axis and colour scale, each downsampled to at most ``max_px``."""
    names = list(images)
    ref = np.asarray(images[names[-1]])
    zmin, zmax = np.percentile(ref, [0.5, 99.5])
    fig = plt.figure(figsize=(3.6 * len(names), 3.6), constrained_layout=True)
    for i, name in enumerate(names, start=1):
        a = np.clip(np.asarray(images[name]), zmin, zmax)
        step = max(1, int(np.ceil(max(a.shape) / max_px)))
        a = a[::step, ::step]
        span = scan_size_m * 1e6 if scan_size_m else float(ref.shape[1])
        x, y = np.meshgrid(np.linspace(0, span, a.shape[1]), np.linspace(0, span * a.shape[0] / a.shape[1],
                                                                          a.shape[0]))
        ax = fig.add_subplot(1, len(names), i, projection="3d")
        ax.plot_surface(x, y, a[::-1], cmap="afmhot", vmin=zmin, vmax=zmax, rstride=1, cstride=1, linewidth=0,
                        antialiased=False)
        ax.set_zlim(zmin, zmax)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("µm" if scan_size_m else "px", fontsize=8)
        ax.set_zlabel(unit, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.view_init(elev=45, azim=-60)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def gain_bars(rows: Sequence[Mapping[str, Any]], title: str = "") -> Figure:
    """Bar chart of the mean PSNR and SSIM gain over bicubic per scale and model, std over images as error bars.

    ``rows`` are those of ``afm_sr.report.stats.paired_comparison`` (one material, e.g. ``"all"``); the
    Wilcoxon p-value is written above each PSNR bar.
    """
    methods = list(dict.fromkeys(r["method"] for r in rows))
    scales = sorted({int(r["scale"]) for r in rows})
    cell = {(int(r["scale"]), r["method"]): r for r in rows}
    width = 0.8 / max(1, len(methods))
    fig, axes = plt.subplots(1, 2, figsize=(4 + 1.2 * len(scales) * len(methods), 3.6), constrained_layout=True)
    for ax, metric, label in ((axes[0], "psnr", "PSNR gain over bicubic (dB)"),
                              (axes[1], "ssim", "SSIM gain over bicubic")):
        for i, method in enumerate(methods):
            here = [cell.get((s, method)) for s in scales]
            x = np.arange(len(scales)) + (i - (len(methods) - 1) / 2) * width
            mean = [c[f"{metric}_gain_mean"] if c else np.nan for c in here]
            std = [c[f"{metric}_gain_std"] if c else 0.0 for c in here]
            ax.bar(x, mean, width, yerr=std, capsize=3, color=f"C{i}", label=method)
            for xi, c in zip(x, here, strict=True):
                if c is not None:
                    top = c[f"{metric}_gain_mean"] + c[f"{metric}_gain_std"]
                    ax.annotate(f"p={c[f'{metric}_p']:.2g}", (xi, max(top, 0)), ha="center", va="bottom", fontsize=7,
                                xytext=(0, 2), textcoords="offset points")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(np.arange(len(scales)), [f"x{s}" for s in scales])
        ax.set_ylabel(label)
        ax.margins(y=0.15)
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def error_maps(preds: Mapping[str, np.ndarray], reference: np.ndarray, unit: str = "nm",
               title: str = "") -> Figure:
    """|prediction - reference| for each method on one shared colour scale."""
    return error_grid({"": preds}, {"": reference}, unit, title)


def error_grid(rows: Mapping[str, Mapping[str, np.ndarray]], references: Mapping[str, np.ndarray],
               unit: str = "nm", title: str = "") -> Figure:
    """|prediction - reference| per label (e.g. scale) and method, ONE colour scale over the whole grid.

    Each label's predictions are compared with ``references[label]``; the title of a map gives its RMS.
    """
    errs = {label: {k: np.abs(np.asarray(v) - np.asarray(references[label])) for k, v in preds.items()}
            for label, preds in rows.items()}
    vmax = max(float(np.percentile(e, 99.5)) for r in errs.values() for e in r.values()) or 1.0

    def cell(ax: Axes, label: str, name: str, e: np.ndarray) -> AxesImage:
        im = _show(ax, e, _extent(e.shape, None), 0.0, vmax,
                   f"{label} |{name} - HR|  RMS {np.sqrt(np.mean(e**2)):.3g} {unit}".strip(), None, cmap="magma")
        ax.title.set_fontsize(9)
        return im

    return _grid(errs, cell, (3.2, 0.0, 3.0, 0.4), 0.8, unit, title)


def to_png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    """Render and close a figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def save_png(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Save a figure atomically (``afm_sr.atomic.write_atomically``) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    png = to_png_bytes(fig, dpi)
    write_atomically({path: lambda tmp: tmp.write_bytes(png)}, overwrite=True)
    return path


@dataclass
class Example:
    """One test image in physical units: the HR map and, per scale, its LR, bicubic and every model's output."""

    name: str
    hr: np.ndarray
    low: dict[int, np.ndarray]
    bicubic: dict[int, np.ndarray]
    models: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)
    scan_size_m: float | None = None


def example_figures(ex: Example, unit: str = "nm", surface_scale: int = 4) -> dict[str, Figure]:
    """The paper's figures for one test image: panels, error maps, line profiles, 3-D view.

    Keys: ``panels`` (HR, LR, bicubic, each model per scale on the HR's colour scale), ``errors``,
    ``profiles`` (through the middle row), ``surface`` (bicubic, models and HR at ``surface_scale``, or
    the middle scale where that is absent).
    """
    scales = sorted(ex.low)
    preds = {f"x{s}": {"bicubic": ex.bicubic[s], **{m: p[s] for m, p in ex.models.items()}} for s in scales}
    rows = {f"x{s}": {f"LR (1/{s})": ex.low[s], **preds[f"x{s}"], "HR": ex.hr} for s in scales}
    s3 = surface_scale if surface_scale in ex.low else scales[len(scales) // 2]
    return {"panels": panel_grid(rows, ex.scan_size_m, unit, ex.name),
            "errors": error_grid(preds, dict.fromkeys(preds, ex.hr), unit, ex.name),
            "profiles": profiles(rows, ex.hr.shape[0] // 2, ex.scan_size_m, unit, ex.name),
            "surface": surfaces({f"x{s3} {k}": v for k, v in preds[f"x{s3}"].items()} | {"HR": ex.hr},
                                ex.scan_size_m, unit, title=ex.name)}
