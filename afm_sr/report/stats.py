"""Paired comparison of each model with bicubic per scale: mean gain per image and a Wilcoxon signed-rank p-value.

Table 1 reports means over images; with a few test images a +0.5 dB mean can come from one image. The
paired test asks whether the per-image differences (model - bicubic, same image, same scale) are centred
on zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import wilcoxon

from afm_sr.metrics import mean_std

REFERENCE = "bicubic"


def method_order(records: Iterable[Mapping[str, Any]], reference: str = REFERENCE) -> list[str]:
    """Methods in order of first appearance, with the reference (bicubic) first."""
    seen = list(dict.fromkeys(r["method"] for r in records))
    return sorted(seen, key=lambda m: (m != reference, seen.index(m)))


def wilcoxon_p(differences: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (1.0 where all are zero, NaN if none).

    Zero differences are dropped (``zero_method='wilcox'``); scipy uses the exact null distribution for
    small samples without ties, the normal approximation otherwise.
    """
    d = np.asarray(differences, dtype=np.float64)
    if d.size == 0:
        return float("nan")
    if not np.any(d):
        return 1.0
    return float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def paired_comparison(records: Iterable[Mapping[str, Any]], reference: str = REFERENCE,
                      by_material: bool = False) -> list[dict[str, Any]]:
    """One row per (material,) scale and method: per-image gain over ``reference`` and its Wilcoxon p-values.

    Records are paired on (material, image, scale); an image that lacks the reference is ignored. Columns:
    ``n``, ``psnr_gain_mean``/``_std`` (dB), ``ssim_gain_mean``/``_std``, ``improved`` (fraction of images
    whose PSNR went up), ``psnr_p``, ``ssim_p``. Stds are population stds over images, as in Table 1.
    """
    records = list(records)
    ref = {(r["material"], r["image"], int(r["scale"])): r for r in records if r["method"] == reference}
    pairs: dict[tuple[str, int, str], list[tuple[Mapping[str, Any], Mapping[str, Any]]]] = {}
    for r in records:
        key = (r["material"], r["image"], int(r["scale"]))
        if r["method"] != reference and key in ref:
            group = (r["material"] if by_material else "all", int(r["scale"]), r["method"])
            pairs.setdefault(group, []).append((r, ref[key]))
    rank = {m: i for i, m in enumerate(method_order(records, reference))}
    rows = []
    for (material, scale, method), ps in sorted(pairs.items(), key=lambda kv: (kv[0][0], kv[0][1], rank[kv[0][2]])):
        dpsnr = [float(r["psnr"]) - float(b["psnr"]) for r, b in ps]
        dssim = [float(r["ssim"]) - float(b["ssim"]) for r, b in ps]
        pm, pstd = mean_std(dpsnr)
        sm, sstd = mean_std(dssim)
        rows.append({"material": material, "scale": scale, "method": method, "n": len(ps),
                     "psnr_gain_mean": pm, "psnr_gain_std": pstd, "ssim_gain_mean": sm, "ssim_gain_std": sstd,
                     "improved": float(np.mean(np.asarray(dpsnr) > 0)), "psnr_p": wilcoxon_p(dpsnr),
                     "ssim_p": wilcoxon_p(dssim)})
    return rows


def to_markdown(rows: Sequence[Mapping[str, Any]], caption: str = "") -> str:
    """The paired comparison as a Markdown table: gain mean (std), share of images improved, p-values."""
    head = ["material", "scale", "method", "n", "PSNR gain dB", "improved", "p (PSNR)", "SSIM gain", "p (SSIM)"]
    lines = ([f"**{caption}**", ""] if caption else []) + ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        vals = [r["material"], f"x{r['scale']}", r["method"], str(r["n"]),
                f"{r['psnr_gain_mean']:+.2f} ({r['psnr_gain_std']:.2f})", f"{r['improved']:.0%}", f"{r['psnr_p']:.3g}",
                f"{r['ssim_gain_mean']:+.4f} ({r['ssim_gain_std']:.4f})", f"{r['ssim_p']:.3g}"]
        lines.append("| " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"
