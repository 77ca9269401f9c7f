"""Zoom-pair benchmark: enhance a scan's window x2/x4 and compare it with a real finer scan of that window.

For every pair of ``--data/pairs.csv`` (made by fetch_pairs.py): the zoom is located in the coarse scan
(``afm_sr.report.registration.locate_window``: the zoom bicubic-downscaled to the coarse pixels, normalized
cross-correlation, then sub-pixel position, scale and angle; no model output takes part), pairs whose match
is poor are rejected with the reason, and the coarse window (with a margin for the network's reach) is
upscaled by each method, resampled onto the zoom's grid (MATLAB bicubic ``imresize`` to the zoom's pixel size,
then the registration's sub-pixel shift and turn by cubic splines, the same for every method) and compared
with the zoom after a least-squares fit of height scale, offset and plane per method.

Methods: bicubic; a Gaussian blur after bicubic (sigma in zoom pixels chosen per scale for the best mean PSNR
over the pairs: an oracle choice that favours the blur); ``default`` (the packaged model) with ``adapt=False``
and, where ``enhance`` adapts by default (nowhere since v0.3; x2 in v0.2's release), with the default
(adapted on the whole coarse scan, as a user would run it), and with ``--adapt`` also ``adapt=True`` at the
other scales; the same for every ``--model NAME=PATH``.

Metrics on the zoom's grid (the fitted prediction vs the plane-levelled zoom, a border of 2 % cropped):
PSNR under range01 (the zoom's 2.5..97.5th percentile range mapped to [0, 1]), SSIM, and the fine-detail
correlation: the correlation with the zoom in the band of spatial frequencies finer than the coarse scan
resolves, from its Nyquist frequency 0.5 / ratio to min(2 x that, 0.4) cycles per zoom pixel (below the
zoom's own noise-dominated top band).

    python experiments/real_pairs/run.py --data ~/data/real_pairs --out experiments/real_pairs/results \\
        [--model v0.3=path/to/model.safetensors ...] [--scales 2 4] [--kinds real-seen synthetic] [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from afm_sr.atomic import Fill, make_folder, write_atomically
from afm_sr.degrade import imresize
from afm_sr.errors import AFMSRError
from afm_sr.infer import enhance, load_model
from afm_sr.infer.adapt import ADAPT_BY_DEFAULT
from afm_sr.infer.weights import SRModel
from afm_sr.io import HeightMap, read
from afm_sr.metrics import MetricSpec, psnr_ssim
from afm_sr.preprocess import plane_level
from afm_sr.report.figures import comparison_panel, error_maps, to_png_bytes
from afm_sr.report.registration import Window, WindowFit, locate_window, resample_to_zoom

MIN_NCC = 0.8  # below: the zoom is not found in the scan (a different area, or changed too much)
#: Lower NCC floors per kind. real-heldout: atomic-scale STM whose 200 nm scan is mostly noise at the 50 nm zoom's
#: scale; its quarter-zoom matches (NCC 0.72-0.83, best elsewhere <= 0.23) agree with the whole zooms' positions
#: and with the two 50 nm zooms' mutual shift (README.md, RESULTS.md).
MIN_NCC_BY_KIND = {"real-heldout": 0.7}
MIN_MARGIN = 0.1  # the match must beat the best one elsewhere by this much, else it is ambiguous
MIN_COVERAGE = 0.6  # share of the zoom that must lie inside the coarse scan (locate_window's min_overlap)
MAX_SCALE_ERROR = 0.05  # |fitted step / nominal step - 1| above this: the pixel sizes or the match are wrong
CONTEXT = 24  # coarse pixels around the window the network sees (its reach is 26 input pixels)
SIGMAS = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0)  # Gaussian blur after bicubic, zoom pixels
BORDER = 0.02  # share of the zoom cropped on each side before measuring


@dataclass
class Pair:
    """One pairs.csv row, read: the coarse scan and zoom in meters with their pixel sizes and known truth."""

    name: str
    kind: str
    coarse: HeightMap
    zoom: HeightMap
    row: dict[str, str]

    @property
    def step(self) -> float:
        """Nominal coarse pixels per zoom pixel."""
        return self.zoom.pixel_size[0] / self.coarse.pixel_size[0]

    def truth(self) -> Window | None:
        """The true window of a synthetic pair, None for a real one."""
        r = self.row
        if not r.get("truth_step"):
            return None
        return Window((float(r["truth_origin_row"]), float(r["truth_origin_col"])), float(r["truth_step"]),
                      float(r["truth_angle_deg"]))


def load_pairs(data: Path, kinds: Sequence[str], limit: int | None) -> list[Pair]:
    """The pairs of ``data/pairs.csv`` of the given kinds (the first ``limit`` of each kind)."""
    rows = list(csv.DictReader(open(data / "pairs.csv")))
    out: list[Pair] = []
    for kind in kinds:
        for r in [r for r in rows if r["kind"] == kind][:limit]:
            coarse = read(data / r["coarse"], pixel_size=float(r["coarse_px_m"]))
            zoom = read(data / r["zoom"], pixel_size=float(r["zoom_px_m"]))
            out.append(Pair(r["pair"], kind, coarse, zoom, r))
    return out


def rejection(fit: WindowFit, step: float, min_ncc: float = MIN_NCC) -> str:
    """Why a registration is too poor to compare on, or '' when it is good."""
    scale_error = fit.window.step / step - 1
    reasons = [f"NCC {fit.ncc:.2f} < {min_ncc}" if fit.ncc < min_ncc else "",
               f"ambiguous: NCC {fit.ncc:.2f} vs {fit.runner_up:.2f} elsewhere" if fit.ncc - fit.runner_up
               < MIN_MARGIN else "",
               f"{fit.coverage:.0%} of the zoom inside the scan" if fit.coverage < MIN_COVERAGE else "",
               f"scale off by {scale_error:+.0%}" if abs(scale_error) > MAX_SCALE_ERROR else ""]
    return "; ".join(r for r in reasons if r)


def window_box(window: Window, zoom_shape: tuple[int, int], coarse_shape: tuple[int, int], margin: int
               ) -> tuple[int, int, int, int]:
    """Coarse rows r0:r1 and cols c0:c1 holding the zoom's footprint and ``margin`` px around it."""
    ys, xs = window.footprint(zoom_shape)
    r0, c0 = max(0, math.floor(ys.min()) - margin), max(0, math.floor(xs.min()) - margin)
    r1 = min(coarse_shape[0], math.ceil(ys.max()) + 1 + margin)
    c1 = min(coarse_shape[1], math.ceil(xs.max()) + 1 + margin)
    return r0, r1, c0, c1


def valid_region(window: Window, zoom_shape: tuple[int, int], coarse_shape: tuple[int, int]) -> tuple[slice, slice]:
    """The largest centred rectangle of zoom pixels whose coarse positions lie inside the scan, less a border."""
    rows, cols = np.meshgrid(np.arange(zoom_shape[0]), np.arange(zoom_shape[1]), indexing="ij")
    ys, xs = window.to_coarse(rows, cols)
    ok = (ys >= 0) & (ys <= coarse_shape[0] - 1) & (xs >= 0) & (xs <= coarse_shape[1] - 1)
    r0, r1, c0, c1 = 0, zoom_shape[0], 0, zoom_shape[1]
    while r1 - r0 > 8 and c1 - c0 > 8 and not ok[r0:r1, c0:c1].all():
        bad = {"r0": (~ok[r0, c0:c1]).sum(), "r1": (~ok[r1 - 1, c0:c1]).sum(), "c0": (~ok[r0:r1, c0]).sum(),
               "c1": (~ok[r0:r1, c1 - 1]).sum()}
        worst = max(bad, key=bad.__getitem__)
        r0, r1, c0, c1 = r0 + (worst == "r0"), r1 - (worst == "r1"), c0 + (worst == "c0"), c1 - (worst == "c1")
    by, bx = max(1, round(BORDER * (r1 - r0))), max(1, round(BORDER * (c1 - c0)))
    return slice(r0 + by, r1 - by), slice(c0 + bx, c1 - bx)


def fit_heights(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``a pred + b + c x + d y`` with a..d the least-squares fit to ``ref`` (height scale, offset, plane)."""
    yy, xx = np.mgrid[0:pred.shape[0], 0:pred.shape[1]]
    design = np.stack([pred.ravel(), np.ones(pred.size), xx.ravel(), yy.ravel()], axis=1)
    norms = np.linalg.norm(design, axis=0)  # unit columns: else lstsq's cutoff drops a pm-scale (STM) height column
    design = design / np.where(norms > 0, norms, 1.0)
    coef, *_ = np.linalg.lstsq(design, ref.ravel(), rcond=None)
    return (design @ coef).reshape(pred.shape)


def band_correlation(pred: np.ndarray, ref: np.ndarray, lo: float, hi: float) -> float:
    """Correlation of ``pred`` and ``ref`` in spatial frequencies lo..hi cycles/px (Hann-tapered, radial band)."""
    taper = np.outer(np.hanning(ref.shape[0]), np.hanning(ref.shape[1]))
    fp, fr = (np.fft.fft2((a - a.mean()) * taper) for a in (pred, ref))
    fy, fx = np.meshgrid(np.fft.fftfreq(ref.shape[0]), np.fft.fftfreq(ref.shape[1]), indexing="ij")
    band = (np.hypot(fy, fx) >= lo) & (np.hypot(fy, fx) <= hi)
    num = float(np.real(fp[band] * np.conj(fr[band])).sum())
    den = math.sqrt(float((np.abs(fp[band]) ** 2).sum() * (np.abs(fr[band]) ** 2).sum()))
    return num / den if den > 0 else 0.0


def measure(pred: np.ndarray, ref: np.ndarray, band: tuple[float, float]) -> dict[str, float]:
    """PSNR (range01 of ``ref``'s 2.5..97.5th percentiles), SSIM and fine-detail correlation after the fit."""
    fitted = fit_heights(pred, ref)
    lo, hi = np.percentile(ref, [2.5, 97.5])
    as_t = [torch.from_numpy(a)[None, None] for a in (fitted, ref)]
    psnr, ssim = psnr_ssim(*as_t, scale=1, spec=MetricSpec("range01", border=0),
                           z_range=torch.tensor([[lo, hi]], dtype=torch.float64))
    return {"psnr": float(psnr[0]), "ssim": float(ssim[0]), "fine_corr": band_correlation(fitted, ref, *band)}


@dataclass
class Model:
    """A named model, run with ``adapt=False`` on a window or with the default on the whole scan (cached)."""

    name: str
    model: SRModel
    whole_scans: dict[tuple[str, int, bool | None], tuple[np.ndarray, float | None]] = field(default_factory=dict)

    def run(self, pair: Pair, box: tuple[int, int, int, int], scale: int, adapt: bool | None
            ) -> tuple[np.ndarray, float | None]:
        """(x``scale`` upscaling of the box, the printed self-check's estimated gain or None)."""
        r0, r1, c0, c1 = box
        if adapt is not False:  # adapting learns from the whole scan, as a user would run it; then the box is cut
            key = (pair.row["coarse"], scale, adapt)
            if key not in self.whole_scans:
                out = enhance(pair.coarse, scale, self.model, adapt=adapt, self_check=True)
                gain = out.metadata.get("afm_sr_estimated_gain_db")
                self.whole_scans[key] = (out.data, None if gain is None else float(gain))
            data, gain = self.whole_scans[key]
            return data[r0 * scale:r1 * scale, c0 * scale:c1 * scale], gain
        window = pair.coarse.with_data(pair.coarse.data[r0:r1, c0:c1], pair.coarse.pixel_size)
        return enhance(window, scale, self.model, adapt=False, self_check=False).data, None


def register(pair: Pair) -> tuple[WindowFit, dict[str, Any]]:
    """Locate the zoom in the coarse scan: the fit and its record (with the reason when it is rejected)."""
    fit = locate_window(pair.coarse.data, pair.zoom.data, pair.step, min_overlap=MIN_COVERAGE)
    return fit, {"pair": pair.name, "kind": pair.kind, "ratio": 1 / pair.step, "ncc": fit.ncc,
                 "runner_up": fit.runner_up, "coverage": fit.coverage, "scale_error": fit.window.step / pair.step - 1,
                 "angle": fit.window.angle_deg,
                 "rejected": rejection(fit, pair.step, MIN_NCC_BY_KIND.get(pair.kind, MIN_NCC)),
                 "truth_error_px": truth_error(pair, fit.window)}


def settings(name: str, scale: int, adapt_too: bool) -> list[tuple[str, bool | None]]:
    """(label, adapt) to run a model with: ``adapt=False``; the default where ``enhance`` adapts by default;
    ``adapt=True`` elsewhere when ``adapt_too``."""
    if ADAPT_BY_DEFAULT.get(scale):
        return [(name, False), (f"{name} default (adapts)", None)]
    return [(name, False)] + ([(f"{name} adapt", True)] if adapt_too else [])


def evaluate_pair(pair: Pair, models: Sequence[Model], scales: Sequence[int], log: Callable[[str], None],
                  adapt_too: bool = False
                  ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[int, dict[str, np.ndarray]]]:
    """Register one pair and measure every method at every scale: (registration record, metric records, images)."""
    fit, reg = register(pair)
    if reg["rejected"] or not scales:
        return reg, [], {}
    zoom = plane_level(pair.zoom.data)
    rows, cols = valid_region(fit.window, zoom.shape, pair.coarse.shape)
    ref = zoom[rows, cols]
    nyquist = 0.5 * fit.window.step  # the coarse scan's Nyquist frequency in cycles per zoom pixel
    band = (nyquist, min(2 * nyquist, 0.4))
    records, images = [], {}
    box = window_box(fit.window, zoom.shape, pair.coarse.shape, CONTEXT)
    crop = pair.coarse.data[box[0]:box[1], box[2]:box[3]]
    for s in scales:
        t0 = time.perf_counter()
        upscaled = imresize(torch.from_numpy(crop), scale=s).numpy()
        bicubic = resample_to_zoom(upscaled, s, fit.window, box[::2], zoom.shape)
        preds = {"bicubic": bicubic[rows, cols]}
        preds |= {f"blur {sigma:g}": ndimage.gaussian_filter(bicubic, sigma)[rows, cols] for sigma in SIGMAS}
        estimates: dict[str, float | None] = {}
        for m in models:
            for name, adapt in settings(m.name, s, adapt_too):
                up, estimates[name] = m.run(pair, box, s, adapt)
                preds[name] = resample_to_zoom(up, s, fit.window, box[::2], zoom.shape)[rows, cols]
        for name, pred in preds.items():
            records.append({"pair": pair.name, "kind": pair.kind, "scale": s, "method": name,
                            "estimated_gain": estimates.get(name), **measure(pred, ref, band)})
        images[s] = {"zoom": ref, **{k: fit_heights(v, ref) for k, v in preds.items() if not k.startswith("blur")}}
        log(f"  x{s}: {len(preds)} methods in {time.perf_counter() - t0:.0f} s")
    return reg, records, images


def truth_error(pair: Pair, window: Window) -> float | None:
    """Largest distance (zoom px) between the fitted and the true position of the zoom's corners (synthetic)."""
    truth = pair.truth()
    if truth is None:
        return None
    (ys, xs), (ty, tx) = window.footprint(pair.zoom.shape), truth.footprint(pair.zoom.shape)
    return float(np.max(np.hypot(ys - ty, xs - tx)) / truth.step)


def choose_sigma(records: list[dict[str, Any]], kind: str, scale: int) -> str:
    """The blur whose mean PSNR over the pairs of ``kind`` at ``scale`` is highest (chosen on the test pairs)."""
    names = [f"blur {s:g}" for s in SIGMAS]
    means = {n: np.mean([r["psnr"] for r in records if (r["kind"], r["scale"], r["method"]) == (kind, scale, n)])
             for n in names}
    return max(means, key=means.__getitem__)


def method_names(records: list[dict[str, Any]], blur: str) -> list[str]:
    """The methods to tabulate: bicubic, the chosen blur, then the models, in order of first appearance."""
    models = [m for m in dict.fromkeys(r["method"] for r in records) if m != "bicubic" and not m.startswith("blur ")]
    return ["bicubic", blur, *models]


def fmt(value: float | None, spec: str) -> str:
    """``value`` formatted, or a dash."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def tables(regs: list[dict[str, Any]], records: list[dict[str, Any]], scales: Sequence[int]) -> str:
    """RESULTS-style Markdown: registration per pair, then per kind and scale a per-pair and a summary table."""
    out = ["## Registration", "",
           "| pair | kind | ratio | NCC | best elsewhere | scale error | angle | error vs truth (zoom px) | verdict |",
           "|---|---|---|---|---|---|---|---|---|"]
    for g in regs:
        out.append(f"| {g['pair']} | {g['kind']} | {g['ratio']:.2f} | {g['ncc']:.3f} | {g['runner_up']:.3f} | "
                   f"{g['scale_error']:+.1%} | {g['angle']:+.2f} | {fmt(g['truth_error_px'], '.2f')} | "
                   f"{g['rejected'] or 'used'} |")
    for kind in dict.fromkeys(r["kind"] for r in records):
        for s in scales:
            rs = [r for r in records if r["kind"] == kind and r["scale"] == s]
            if not rs:
                continue
            blur = choose_sigma(records, kind, s)
            names = method_names(rs, blur)
            by = {(r["pair"], r["method"]): r for r in rs}
            pairs = list(dict.fromkeys(r["pair"] for r in rs))
            out += ["", f"## {kind} pairs, x{s} (PSNR dB range01 / fine-detail correlation; blur sigma {blur[5:]} "
                        "zoom px, the best mean over these pairs)", "",
                    "| pair | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
            for p in pairs:
                cells = [f"{by[p, n]['psnr']:.2f} / {by[p, n]['fine_corr']:.3f}" for n in names]
                out.append(f"| {p} | " + " | ".join(cells) + " |")
            out += ["", f"Summary, {kind}, x{s}, {len(pairs)} pairs (gain over bicubic; share of pairs better than "
                        "bicubic)", "",
                    "| method | PSNR | gain dB | better PSNR | SSIM | fine corr | better fine corr | self-check said |",
                    "|---|---|---|---|---|---|---|---|"]
            for n in names:
                psnr = np.array([by[p, n]["psnr"] for p in pairs])
                base = np.array([by[p, "bicubic"]["psnr"] for p in pairs])
                corr = np.array([by[p, n]["fine_corr"] for p in pairs])
                base_corr = np.array([by[p, "bicubic"]["fine_corr"] for p in pairs])
                est = [by[p, n]["estimated_gain"] for p in pairs if by[p, n]["estimated_gain"] is not None]
                out.append(f"| {n} | {psnr.mean():.2f} | {psnr.mean() - base.mean():+.2f} | "
                           f"{int((psnr > base).sum())}/{len(pairs)} | "
                           f"{np.mean([by[p, n]['ssim'] for p in pairs]):.4f} | {corr.mean():.3f} | "
                           f"{int((corr > base_corr).sum())}/{len(pairs)} | "
                           f"{fmt(float(np.mean(est)) if est else None, '+.2f')} |")
    return "\n".join(out) + "\n"


def records_csv(records: list[dict[str, Any]]) -> str:
    """Every measurement as CSV."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(records[0]))
    writer.writeheader()
    writer.writerows(records)
    return buf.getvalue()


def panel_fills(name: str, images: dict[int, dict[str, np.ndarray]], pixel_m: float, out: Path) -> dict[Path, Fill]:
    """PNG panels of one pair per scale: bicubic | models | zoom, and the error maps against the zoom."""
    fills: dict[Path, Fill] = {}
    safe = name.replace("/", "_").replace(">", "")
    for s, imgs in images.items():
        nm = {k: 1e9 * v for k, v in imgs.items()}
        preds = {k: v for k, v in nm.items() if k != "zoom"}
        title = f"{name} x{s} (coarse window upscaled, each fitted to the zoom)"
        figures = {"panel": comparison_panel({**preds, "zoom (finer scan)": nm["zoom"]},
                                             imgs["zoom"].shape[1] * pixel_m, title=title),
                   "errors": error_maps(preds, nm["zoom"], title=title)}
        for kind, fig in figures.items():
            png = to_png_bytes(fig)
            fills[out / f"{safe}_x{s}_{kind}.png"] = lambda tmp, b=png: tmp.write_bytes(b)
    return fills


def parse_models(specs: Sequence[str]) -> list[Model]:
    """``default`` (the packaged model) and every ``NAME=PATH`` (or bare PATH, named by its stem)."""
    models = [Model("default", load_model("default"))]
    for spec in specs:
        name, _, path = spec.rpartition("=") if "=" in spec else (Path(spec).stem, "", spec)
        models.append(Model(name, load_model(path)))
    return models


def main() -> None:
    """Run the benchmark and write tables, records and panels into --out."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path.home() / "data" / "real_pairs")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                    help="a candidate model (.safetensors or .ckpt) beside the packaged one; repeatable")
    ap.add_argument("--scales", type=int, nargs="*", default=[2, 4], help="none: register only")
    ap.add_argument("--kinds", nargs="+", default=["real-seen", "synthetic"])
    ap.add_argument("--limit", type=int, default=None, help="at most this many pairs of each kind")
    ap.add_argument("--adapt", action="store_true",
                    help="also run each model with adapt=True at scales where enhance does not adapt by default")
    ap.add_argument("--panels", type=int, default=2,
                    help="PNG panels for the first N used pairs of each kind (one per coarse scan)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--force", action="store_true", help="replace files already in --out")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    try:
        models = parse_models(args.model)
        pairs = load_pairs(args.data, args.kinds, args.limit)
        regs, records, fills = [], [], {}
        panels: dict[str, set[str]] = {k: set() for k in args.kinds}  # coarse scans shown, per kind
        for pair in pairs:
            print(f"{pair.name} ({pair.kind}, ratio {1 / pair.step:.2f})", flush=True)
            reg, recs, images = evaluate_pair(pair, models, args.scales, lambda m: print(m, flush=True), args.adapt)
            print(f"  registration NCC {reg['ncc']:.3f}, {reg['rejected'] or 'used'}", flush=True)
            regs.append(reg)
            records += recs
            coarse = pair.row["coarse"]
            if images and len(panels[pair.kind]) < args.panels and coarse not in panels[pair.kind]:
                panels[pair.kind].add(coarse)
                fills |= panel_fills(pair.name, images, pair.zoom.pixel_size[0], args.out)
        if not records and args.scales:
            raise AFMSRError("no pair passed the registration; see the registration lines above")
        make_folder(args.out)
        text = tables(regs, records, args.scales)
        write_atomically({args.out / "tables.md": lambda tmp: tmp.write_text(text),
                          **({args.out / "records.csv": lambda tmp: tmp.write_text(records_csv(records))}
                             if records else {}), **fills},
                         overwrite=args.force)
    except (AFMSRError, OSError) as exc:
        sys.exit(f"afm-sr: error: {exc}")
    print(text)


if __name__ == "__main__":
    main()
