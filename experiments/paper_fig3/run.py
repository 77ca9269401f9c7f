"""The paper's Figure 3 with synthetic scans: a 32x32 scan, enhanced x2/x4/x8, against real 64/128/256 px scans.

One area of a synthetic material is 'scanned' several times, as an instrument would: every scan point-samples
the surface on its own grid (``afm_sr.degrade.ScanDegradation``: line noise, white noise, drift within the
frame) and each scan sees the area moved by thermal drift between scans. The 32x32 scan is upscaled by
bicubic and by a trained model, registered to the higher-resolution scan (sub-pixel phase correlation,
one shift measured on bicubic and applied to both), and PSNR/SSIM are computed on the overlap.

    python experiments/paper_fig3/run.py --ckpt outputs/quick/<date>/checkpoints/best.ckpt
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from scipy import ndimage

from afm_sr.degrade import ScanDegradation, imresize
from afm_sr.infer import load_model
from afm_sr.metrics import MetricSpec, psnr_ssim
from afm_sr.models import SRNet
from afm_sr.preprocess import fit_normalization
from afm_sr.report.figures import panel_grid, profiles, save_png
from afm_sr.report.registration import apply_shift, overlap, phase_correlation

REPO = Path(__file__).resolve().parents[2]
LR_PX = 32
SCALES = (2, 4, 8)


def true_surface(material: str, index: int, n_px: int, seed: int) -> tuple[np.ndarray, float]:
    """The ideal surface (meters) of conf/material/<material>.yaml at ``n_px``, without instrument artefacts."""
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["dataset=mono", f"material@dataset.materials.ceramic={material}",
                                          f"seed={seed}", f"dataset.materials.ceramic.n_px={n_px}",
                                          "dataset.materials.ceramic.artefacts=null"])
    hm = instantiate(cfg.dataset.materials.ceramic).image(index)
    return hm.data, hm.scan_size[0]


def scan(surface: np.ndarray, n_px: int, offset_px: tuple[float, float], scanner: ScanDegradation,
         gen: torch.Generator) -> np.ndarray:
    """An ``n_px`` scan (meters) of ``surface`` moved by ``offset_px`` (surface pixels) since the first scan."""
    stats = fit_normalization(surface)
    moved = ndimage.shift(stats.apply(surface), offset_px, order=3, mode="reflect")
    lr = scanner.downscale(torch.from_numpy(moved), surface.shape[0] // n_px, gen)
    return stats.invert(lr.numpy())


@torch.no_grad()
def enhance(net: SRNet, lr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(bicubic, model) upscaling of an LR scan in meters, in the network's z-scored units and back."""
    stats = fit_normalization(lr)
    z = torch.from_numpy(stats.apply(lr)).float()
    up = imresize(z, scale=scale)
    out = net(z[None, None], scale)[0, 0]
    return stats.invert(up.numpy()), stats.invert(out.numpy())


def as_batch(image: np.ndarray) -> torch.Tensor:
    """(H, W) array -> (1, 1, H, W) tensor for afm_sr.metrics."""
    return torch.from_numpy(np.ascontiguousarray(image))[None, None]


def metrics(pred: np.ndarray, hr: np.ndarray, window: tuple[slice, slice]) -> tuple[float, float]:
    """PSNR/SSIM (range01: the HR scan's clipped range -> [0, 1]) on ``window`` of both maps."""
    ref = hr[window]
    stats = fit_normalization(ref)
    psnr, ssim = psnr_ssim(as_batch(pred[window]), as_batch(ref), 1, MetricSpec("range01", border=0),
                           torch.tensor([[stats.lo, stats.hi]]))
    return float(psnr[0]), float(ssim[0])


def compare(net: SRNet, surface: np.ndarray, drift_frac: float, scanner: ScanDegradation, seed: int
            ) -> tuple[list[dict], dict[str, dict[str, np.ndarray]]]:
    """Scan one area at 32 px and at 32*s px, enhance, register, measure; rows per scale and images for figures."""
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)

    def moved() -> tuple[float, float]:
        """Where drift has taken the area since the first scan (surface pixels)."""
        return tuple(rng.uniform(-drift_frac, drift_frac, 2) * surface.shape[0])

    low_at = moved()
    low = scan(surface, LR_PX, low_at, scanner, gen)
    rows, panels = [], {}
    for s in SCALES:
        hr_at = moved()
        hr = scan(surface, LR_PX * s, hr_at, scanner, gen)
        bicubic, model = enhance(net, low, s)
        shift = phase_correlation(hr, bicubic)
        px = surface.shape[0] / hr.shape[0]  # surface pixels per HR-scan pixel
        row = {"scale": s, "hr_px": hr.shape[0], "shift_y_px": shift[0], "shift_x_px": shift[1],
               "true_shift_y_px": (hr_at[0] - low_at[0]) / px, "true_shift_x_px": (hr_at[1] - low_at[1]) / px}
        for name, shifted in (("raw", (0.0, 0.0)), ("registered", shift)):
            window = overlap(hr.shape, shifted, margin=s)
            for method, pred in (("bicubic", bicubic), ("model", model)):
                row[f"{name}_{method}_psnr"], row[f"{name}_{method}_ssim"] = metrics(apply_shift(pred, shifted), hr,
                                                                                     window)
        rows.append(row)
        panels[f"x{s}"] = {f"LR scan {LR_PX} px": low * 1e9, "bicubic (registered)": apply_shift(bicubic, shift) * 1e9,
                           "afm-sr (registered)": apply_shift(model, shift) * 1e9, f"scan {hr.shape[0]} px": hr * 1e9}
    return rows, panels


COLUMNS = {"raw bicubic PSNR": "raw_bicubic_psnr", "raw afm-sr PSNR": "raw_model_psnr",
           "bicubic PSNR": "registered_bicubic_psnr", "afm-sr PSNR": "registered_model_psnr",
           "bicubic SSIM": "registered_bicubic_ssim", "afm-sr SSIM": "registered_model_ssim"}


def to_markdown(rows: list[dict]) -> str:
    """Mean (std) over areas per scale: raw and registered PSNR/SSIM of bicubic and model, |shift| and its error."""
    head = ["scale", "HR scan", "areas", "mean shift px", "shift error px", *COLUMNS, "gain dB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in SCALES:
        here = [r for r in rows if r["scale"] == s]
        shift = np.mean([math.hypot(r["shift_y_px"], r["shift_x_px"]) for r in here])
        error = np.mean([math.hypot(r["shift_y_px"] - r["true_shift_y_px"], r["shift_x_px"] - r["true_shift_x_px"])
                         for r in here])
        cells = [f"x{s}", f"{here[0]['hr_px']} px", str(len(here)), f"{shift:.2f}", f"{error:.2f}"]
        for key in COLUMNS.values():
            v = np.array([r[key] for r in here])
            cells.append(f"{v.mean():.2f} ({v.std():.2f})" if "psnr" in key else f"{v.mean():.4f} ({v.std():.4f})")
        gain = np.mean([r["registered_model_psnr"] - r["registered_bicubic_psnr"] for r in here])
        lines.append("| " + " | ".join([*cells, f"{gain:+.2f}"]) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Parse arguments, compare on ``--areas`` areas, write results.md/.csv and the first area's figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="a train.py checkpoint, exported .safetensors, or 'default'")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument("--material", default="ceramic", help="a synthetic material of conf/material/")
    parser.add_argument("--areas", type=int, default=4, help="areas (images) of the material to scan")
    parser.add_argument("--surface-px", type=int, default=512, help="pixels of the ideal surface (>= 2 x 256)")
    parser.add_argument("--drift", type=float, default=0.01, help="drift between scans, fraction of the frame")
    parser.add_argument("--line-noise", type=float, default=0.02, help="per-line offset std, z-score units")
    parser.add_argument("--white-noise", type=float, default=0.01, help="white noise std, z-score units")
    parser.add_argument("--drift-in-frame", type=float, default=1.0, help="drift within one frame, surface px")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    net = load_model(args.ckpt).net
    scanner = ScanDegradation(args.line_noise, args.white_noise, args.drift_in_frame)
    rows = []
    for area in range(args.areas):
        surface, size = true_surface(args.material, area, args.surface_px, args.seed)
        area_rows, panels = compare(net, surface, args.drift, scanner, args.seed * 1000 + area)
        rows += [{"area": area, "scan_size_um": size * 1e6, **r} for r in area_rows]
        if area == 0:
            title = f"{args.material} area 0, {size * 1e6:.2f} µm: {LR_PX} px scan enhanced vs real scans"
            save_png(panel_grid(panels, size, "nm", title), args.out / "fig3_panels.png")
            save_png(profiles(panels, LR_PX * SCALES[0] // 2, size, "nm", title), args.out / "fig3_profiles.png")
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    text = (f"checkpoint `{args.ckpt}`, material {args.material}, {args.areas} areas; PSNR (dB) / SSIM mean (std) "
            f"over areas, range01 on the HR scan's clipped range, border of `scale` px and the registration shift "
            f"cropped; raw = without registration\n\n" + to_markdown(rows))
    (args.out / "results.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
