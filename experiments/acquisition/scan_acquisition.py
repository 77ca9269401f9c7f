"""What one scan tells about its own acquisition (issue 21, section 3): a width estimator and the self-check's bias.

python experiments/acquisition/scan_acquisition.py width        # fast-axis width read from each scan's spectrum
python experiments/acquisition/scan_acquisition.py self-check   # the self-check's estimate vs the true gain

``width``: a detector that averages over each pixel's time, or a feedback that lags, low-passes the scan lines
along the fast axis only, so on a surface without a preferred direction the power along kx falls faster than
along ky. ``estimate_fast_width`` reads that anisotropy from the 2-D spectrum (wedges around the axes, the
line-offset column kx ~ 0 left out), takes the low-frequency anisotropy as the surface's own and fits a box's
``sinc**2`` to the rest; it says it could not tell where the surface itself is anisotropic or the fit fails. The
study records every protocol of the benchmark (bench.py) on afm-samples and the afm-train test maps, and the real
scans as they are. ``self-check``: for the same protocols, the gain the self-check estimates from the coarse scan
alone under each assumption of the coarser scan (``afm_sr.infer.adapt.check_degradation``) against the true gain.
Results: RESULTS.md, "What a scan tells about its acquisition".
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from afm_sr.degrade import degrade, modcrop
from afm_sr.errors import AFMSRError
from afm_sr.infer import check_gain, load_model
from afm_sr.infer.adapt import self_check
from afm_sr.io import HeightMap
from afm_sr.preprocess import fit_normalization, level

sys.path.insert(0, str(Path(__file__).parent))
from bench import PROTOCOLS, afm_train_test_maps, protocol, sample_maps

#: Spectral bands (cycles per pixel): the surface's own anisotropy is read in LOW, the acquisition's in HIGH.
LOW, HIGH = (0.03, 0.09), (0.12, 0.45)
#: The widest box fitted (pixels) and the grid the fit searches.
WIDTHS = np.round(np.arange(0.0, 3.001, 0.05), 2)
#: Half-angle of the wedges around the kx and ky axes (radians), and kx bins next to 0 left out (line offsets).
WEDGE, SKIP_KX = math.radians(30), 2
#: Could not tell where the surface's own anisotropy exceeds this factor in power, the fit's rms log-residual
#: exceeds MAX_RESIDUAL, or the scan has fewer than MIN_PX pixels a side.
MAX_ANISOTROPY, MAX_RESIDUAL, MIN_PX = 4.0, 0.35, 32


@dataclass(frozen=True)
class FastAxisEstimate:
    """The effective box width along the fast axis (LR pixels) and whether the scan could tell it.

    width : the fitted width (0: no fast-axis averaging seen); None where the scan could not tell.
    anisotropy : the surface's own power ratio x/y in the low band (1: isotropic).
    residual : rms of the fit's log-ratio residual in the high band.
    reason : why the scan could not tell ("" where it could).
    """

    width: float | None
    anisotropy: float
    residual: float
    reason: str = ""

    def describe(self) -> str:
        """One phrase for messages, e.g. ``fast-axis averaging over 1.1 px``."""
        if self.width is None:
            return f"fast-axis averaging unknown ({self.reason})"
        return f"fast-axis averaging over {self.width:.2g} px" if self.width > 0 else "no fast-axis averaging"


def _wedge_spectra(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Radial bins (cycles/px) and the mean power in the kx-wedge and the ky-wedge of the windowed spectrum."""
    ny, nx = z.shape
    win = np.outer(np.hanning(ny), np.hanning(nx))
    power = np.abs(np.fft.fft2((z - z.mean()) * win)) ** 2
    ky, kx = np.meshgrid(np.fft.fftfreq(ny), np.fft.fftfreq(nx), indexing="ij")
    rho, angle = np.hypot(kx, ky), np.arctan2(np.abs(ky), np.abs(kx))
    in_x = angle <= WEDGE
    in_y = (angle >= math.pi / 2 - WEDGE) & (np.abs(kx) > SKIP_KX / nx)
    edges = np.linspace(LOW[0], HIGH[1], 25)
    centres = 0.5 * (edges[1:] + edges[:-1])
    px, py = np.full(len(centres), np.nan), np.full(len(centres), np.nan)
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        band = (rho >= lo) & (rho < hi)
        if (band & in_x).any() and (band & in_y).any():
            px[i], py[i] = power[band & in_x].mean(), power[band & in_y].mean()
    return centres, px, py


def _box_response(width: float, f: np.ndarray) -> np.ndarray:
    """Power transfer of a box of ``width`` px at ``f`` cycles/px, averaged over the kx-wedge's directions."""
    cos = np.cos(np.linspace(0, WEDGE, 7))
    return (np.sinc(width * f[:, None] * cos[None, :]) ** 2).mean(axis=1)


def estimate_fast_width(heights: np.ndarray) -> FastAxisEstimate:
    """Fit the effective box width of the fast-axis averaging from the scan's own spectrum (rows = scan lines)."""
    z = np.asarray(heights, dtype=np.float64)
    if z.ndim != 2 or min(z.shape) < MIN_PX:
        return FastAxisEstimate(None, 1.0, 0.0, f"the scan is under {MIN_PX} px a side")
    yy, xx = np.mgrid[: z.shape[0], : z.shape[1]]
    design = np.stack([np.ones(z.size), yy.ravel(), xx.ravel()], axis=1)
    z = z - (design @ np.linalg.lstsq(design, z.ravel(), rcond=None)[0]).reshape(z.shape)
    f, px, py = _wedge_spectra(z)
    ok = np.isfinite(px) & np.isfinite(py) & (px > 0) & (py > 0)
    if not ok.any():
        return FastAxisEstimate(None, 1.0, 0.0, "the scan holds no detail to read a spectrum from")
    log_ratio = np.where(ok, np.log(np.where(ok, px, 1.0) / np.where(ok, py, 1.0)), np.nan)
    low = ok & (f >= LOW[0]) & (f < LOW[1])
    high = ok & (f >= HIGH[0]) & (f <= HIGH[1])
    if not low.any() or high.sum() < 4:
        return FastAxisEstimate(None, 1.0, 0.0, "the scan is too small for its spectrum")
    own = float(np.mean(log_ratio[low]))
    target = log_ratio[high] - own
    fits = [(float(np.sqrt(np.mean((target - np.log(_box_response(w, f[high]))) ** 2))), float(w))
            for w in WIDTHS]
    residual, width = min(fits)
    anisotropy = math.exp(own)
    if max(anisotropy, 1 / anisotropy) > MAX_ANISOTROPY:
        return FastAxisEstimate(None, anisotropy, residual,
                                f"the surface itself is {max(anisotropy, 1 / anisotropy):.1f}x anisotropic")
    if residual > MAX_RESIDUAL:
        return FastAxisEstimate(None, anisotropy, residual,
                                f"no fast-axis averaging explains the spectrum (residual {residual:.2f})")
    return FastAxisEstimate(width, anisotropy, residual)


def scans(maps: list[HeightMap], proto: str, scale: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, HR, its coarse scan under ``proto``) per map, leveled and z-scored as the benchmark does."""
    out = []
    for hm in maps:
        try:
            data = level(hm.data)
            hr = modcrop(torch.from_numpy(fit_normalization(data).apply(data)), scale)
        except AFMSRError:
            continue
        lr, _ = degrade(protocol(proto), hr, scale, torch.Generator().manual_seed(0))
        out.append((hm.source.name if hm.source is not None else "?", hr.numpy(), lr.numpy()))
    return out


def width_study(maps: list[HeightMap], out: Path) -> None:
    """Per protocol and scale the estimated widths (median, quartiles, share it could not tell); real scans as-is."""
    rows = []
    for proto in ["bicubic", *PROTOCOLS]:
        for s in (2, 4):
            for name, _, lr in scans(maps, proto, s):
                e = estimate_fast_width(lr)
                rows.append({"protocol": proto, "scale": s, "image": name, "width": e.width, "reason": e.reason})
    for name, hr, _ in scans(maps, "bicubic", 2):
        e = estimate_fast_width(hr)
        rows.append({"protocol": "real scan as recorded", "scale": 1, "image": name, "width": e.width,
                     "reason": e.reason})
    write(rows, out / "scan_widths.csv")
    print("| protocol | scale | median width (px) | quartiles | could not tell |\n|---|---|---|---|---|")
    for key in dict.fromkeys((r["protocol"], r["scale"]) for r in rows):
        sel = [r["width"] for r in rows if (r["protocol"], r["scale"]) == key]
        ws = np.array([np.nan if w is None else w for w in sel])
        known = ws[np.isfinite(ws)]
        q = np.percentile(known, [25, 50, 75]) if len(known) else [np.nan] * 3
        print(f"| {key[0]} | x{key[1]} | {q[1]:.2f} | {q[0]:.2f}-{q[2]:.2f} | {np.isnan(ws).sum()}/{len(ws)} |")


def self_check_study(maps: list[HeightMap], out: Path) -> None:
    """Per protocol and scale: the true gain and the self-check's estimate from the coarse scan under each pairs."""
    model, rows = load_model("default"), []
    for s in (2, 4):
        for proto in ["bicubic", *PROTOCOLS]:
            for name, hr, lr in scans(maps, proto, s):
                if min(lr.shape) < 8 * s:
                    continue
                row = {"protocol": proto, "scale": s, "image": name,
                       "true": check_gain(hr, s, model=model, degradation=protocol(proto)).psnr_gain}
                for pairs in ("bicubic", "instrument"):
                    c = self_check(model, lr, s, pairs=pairs)
                    row[pairs] = c.base_psnr - c.bicubic_psnr
                rows.append(row)
            print(f"x{s} {proto}: {len(rows)} rows", flush=True)
    write(rows, out / "self_check.csv")
    print("| scale | protocol | true gain | self-check, bicubic pairs | self-check, instrument pairs |")
    print("|---|---|---|---|---|")
    for key in dict.fromkeys((r["scale"], r["protocol"]) for r in rows):
        sel = [r for r in rows if (r["scale"], r["protocol"]) == key]
        means = [np.mean([r[c] for r in sel]) for c in ("true", "bicubic", "instrument")]
        print(f"| x{key[0]} | {key[1]} | {means[0]:+.2f} | {means[1]:+.2f} | {means[2]:+.2f} |")
    for s in (2, 4):
        sel = [r for r in rows if r["scale"] == s]
        for c in ("bicubic", "instrument"):
            err = np.array([r[c] - r["true"] for r in sel])
            print(f"x{s} {c} pairs: mean error {err.mean():+.2f} dB, mean |error| {np.abs(err).mean():.2f}, "
                  f"promised 0.3 dB more than true on {(err > 0.3).sum()}/{len(err)}, "
                  f"correlation {np.corrcoef([r[c] for r in sel], [r['true'] for r in sel])[0, 1]:.2f}")


def write(rows: list[dict[str, object]], path: Path) -> None:
    """Rows as CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    """Run one study on afm-samples and the afm-train test maps."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=["width", "self-check"])
    parser.add_argument("--sets", nargs="+", default=["samples", "afm-train-test"])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    loaders = {"samples": sample_maps, "afm-train-test": afm_train_test_maps}
    maps = [hm for name in args.sets for hm in loaders[name](None)]
    (width_study if args.study == "width" else self_check_study)(maps, args.out)


if __name__ == "__main__":
    main()
