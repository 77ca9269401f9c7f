"""Adaptation on real scans of realistic size: bicubic, base, adapted, self-check estimate vs true gain, time.

python experiments/adapt/bench.py [--scales 2 4] [--steps N] [--params auto|all] [--lr LR] [--anchor 0]
                                  [--pairs bicubic|trained] [--protocol bicubic|scan]
                                  [--files 6] [--train-maps 4] [--out experiments/adapt/results_<tag>.md]

Files: the readable ../shared/afm-samples scans (duplicates of one scan in another format dropped) and the
held-out test split of ../shared/afm-train (``split_groups`` with the datamodule's fractions and seed). Per file
and scale, the check-gain protocol: the HR scan (plane-leveled, clipped, z-scored) is bicubic-downscaled by s and
restored; PSNR range01, border s. ``--protocol scan`` makes the LR a point-sampled scan with line and white noise
instead (``SCANNER``) and restores it with ``enhance``, scored the same way. The adaptation and both self-check
estimates see only that low-resolution image (their pairs are it, downscaled again by s), never the HR
it is scored against.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from afm_sr.data import split_groups
from afm_sr.degrade import ScanDegradation, imresize, modcrop
from afm_sr.errors import AFMSRError
from afm_sr.infer import SRModel, check_gain, enhance, load_model
from afm_sr.infer.adapt import adapt, self_check
from afm_sr.io import HeightMap, read
from afm_sr.materials.folder import FolderMaterial
from afm_sr.metrics import MetricSpec, psnr_ssim
from afm_sr.preprocess import fit_normalization, level

SHARED = Path(os.environ.get("AFM_SR_SHARED", Path(__file__).resolve().parents[3] / "shared"))
#: the same scan in several formats: keep one of each
DUPLICATES = {"AFMReader__sample_0.top", "SciFiDatasets__GwiddionReader_chip.gsf", "AFMReader__sample_0.h5-jpk",
              "AFMReader__sample_0.jpk-qi-image"}


#: the scanned LR of ``--protocol scan``: mid-range noise of the training degradation (z-score units), no drift
SCANNER = ScanDegradation(line_noise=0.02, white_noise=0.01, drift_px=0.0)
#: afm-train test maps smaller than this (150 px crops) are not the size users enhance
MIN_SIDE = 256


def scans(n_samples: int, n_train: int) -> list[tuple[str, HeightMap]]:
    """(name, scan) for the afm-samples files that read, then the held-out afm-train test maps of MIN_SIDE px+."""
    out = []
    for path in sorted((SHARED / "afm-samples").iterdir()):
        if path.suffix.lower() in (".md", ".csv") or path.is_dir() or path.name in DUPLICATES:
            continue
        try:
            out.append((path.name, read(path)))
        except AFMSRError:
            continue
    out = out[:n_samples]
    maps = FolderMaterial(name="afm_train", path=str(SHARED / "afm-train"), glob="*.npy", channel=None,
                          level_plane=True, align_rows=False, limit=None, pixel_size=1e-8).load()
    parts = split_groups([m.metadata["group"] for m in maps], (0.7, 0.15, 0.15), 1234, "afm_train")
    test = [m for m, part in zip(maps, parts, strict=True) if part == "test" and min(m.shape) >= MIN_SIDE]
    return out + [(f"afm-train:{m.metadata['group']}", m) for m in test[:n_train]]


def high_resolution(hm: HeightMap, scale: int) -> tuple[torch.Tensor, tuple[float, float]]:
    """The HR image check_gain scores against (leveled, clipped, z-scored, cropped to s) and its clip range."""
    heights = level(hm.data)
    norm = fit_normalization(heights)
    return modcrop(torch.from_numpy(norm.apply(heights)), scale), norm.z_range


def low_resolution(hr: torch.Tensor, scale: int, protocol: str, seed: int) -> np.ndarray:
    """The LR image: check_gain's (bicubic down by s) or a point-sampled scan with line and white noise."""
    if protocol == "bicubic":
        return imresize(hr, 1.0 / scale).numpy()
    return SCANNER.downscale(hr, scale, torch.Generator().manual_seed(seed)).numpy()


def true_gain(hm: HeightMap, scale: int, model: SRModel, protocol: str, seed: int) -> tuple[float, float]:
    """(bicubic PSNR, model gain in dB): check_gain itself, or the same score for a scanned LR restored by enhance."""
    if protocol == "bicubic":
        result = check_gain(hm, scale, model, level_plane=True)
        return result.bicubic_psnr, result.psnr_gain
    hr, z_range = high_resolution(hm, scale)
    low = torch.from_numpy(low_resolution(hr, scale, protocol, seed))
    preds = torch.stack([imresize(low, scale=scale),
                         torch.from_numpy(enhance(low.numpy(), scale, model, self_check=False, adapt=False).data)])
    psnr, _ = psnr_ssim(preds[:, None], hr.expand_as(preds)[:, None], scale, MetricSpec("range01"),
                        torch.tensor([z_range]).expand(2, 2))
    return float(psnr[0]), float(psnr[1] - psnr[0])


def main() -> None:
    """Print and write the per-file table, means per scale and the Spearman correlations."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--steps", type=int, default=None, help="default: the scale's adapt.RECIPES")
    parser.add_argument("--lr", type=float, default=None, help="default: the scale's adapt.RECIPES")
    parser.add_argument("--params", default=None, help="auto or all (default: the scale's adapt.RECIPES)")
    parser.add_argument("--anchor", type=float, default=0.0)
    parser.add_argument("--pairs", default=None, choices=["bicubic", "trained"],
                        help="how the adaptation's own pairs are degraded (default: the scale's adapt.RECIPES)")
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--train-maps", type=int, default=4)
    parser.add_argument("--protocol", default="bicubic", choices=["bicubic", "scan"],
                        help="how the LR is made from the HR scan: check_gain's bicubic, or a point-sampled scan")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    model = load_model("default")
    rows, table = [], []
    for name, hm in scans(args.files, args.train_maps):
        for s in args.scales:
            try:
                lr = low_resolution(high_resolution(hm, s)[0], s, args.protocol, seed=len(rows))
                bicubic_psnr, base_gain = true_gain(hm, s, model, args.protocol, seed=len(rows))
                est_base = self_check(model, lr, s).gain
                start = time.perf_counter()
                ad = adapt(model, lr, s, steps=args.steps, lr=args.lr, params=args.params, anchor=args.anchor,
                           pairs=args.pairs)
                seconds = time.perf_counter() - start
                adapted_gain = true_gain(hm, s, ad.model, args.protocol, seed=len(rows))[1]
            except AFMSRError as exc:
                print(f"skip {name} x{s}: {exc}")
                continue
            c = ad.check
            adapted_only = c.adapted_psnr - c.bicubic_psnr if c.adapted_psnr is not None else float("nan")
            row = {"file": name, "scale": s, "shape": "x".join(map(str, hm.shape)), "bicubic": bicubic_psnr,
                   "base": base_gain, "used": adapted_gain, "choice": c.used, "steps": c.steps,
                   "est_base_whole": est_base, "est_base_held": c.base_psnr - c.bicubic_psnr,
                   "est_adapted_held": adapted_only, "est_used": c.gain, "seconds": seconds,
                   "held_used": (adapted_only if c.used == "adapted" else c.base_psnr - c.bicubic_psnr)}
            rows.append(row)
            table.append(f"| {name} | x{s} | {row['shape']} | {row['bicubic']:.2f} | {row['base']:+.2f} | "
                         f"{row['used']:+.2f} | {c.used} ({c.steps}) | {est_base:+.2f} | {row['est_base_held']:+.2f} | "
                         f"{adapted_only:+.2f} | {row['est_used']:+.2f} | {seconds:.1f} |")
            print(table[-1], flush=True)
    lines = [f"LR {args.protocol}; adaptation pairs {args.pairs}; steps {args.steps}, lr {args.lr}, "
             f"params {args.params}, anchor {args.anchor}; "
             f"torch threads {torch.get_num_threads()}", "",
             "| file | scale | pixels | bicubic PSNR | base gain | with --adapt gain | model used (steps) | "
             "self-check base (whole) | base on held-out | adapted on held-out | estimate printed | adapt s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|", *table, ""]
    for s in args.scales:
        sel = [r for r in rows if r["scale"] == s]
        if not sel:
            continue
        mean = {k: float(np.mean([r[k] for r in sel])) for k in ("base", "used", "seconds")}
        rho_base = spearmanr([r["est_base_whole"] for r in sel], [r["base"] for r in sel]).statistic
        rho_used = spearmanr([r["est_used"] for r in sel], [r["used"] for r in sel]).statistic
        lines.append(f"- x{s}, {len(sel)} files: mean true gain base {mean['base']:+.3f} dB, with --adapt "
                     f"{mean['used']:+.3f} dB (difference {mean['used'] - mean['base']:+.3f}); adapted model chosen "
                     f"on {sum(r['choice'] == 'adapted' for r in sel)}; mean adapt time {mean['seconds']:.1f} s; "
                     f"Spearman(self-check, true gain): base {rho_base:+.2f}, with --adapt {rho_used:+.2f}")
        for label, key in (("printed estimate", "est_used"), ("held-out estimate of the model used", "held_used")):
            error = [r[key] - r["used"] for r in sel]
            lines.append(f"  - {label} minus true gain (with --adapt): mean {np.mean(error):+.2f} dB, mean absolute "
                         f"{np.mean(np.abs(error)):.2f} dB")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
