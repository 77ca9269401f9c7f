"""Table 1 of the paper from per-image records: PSNR/SSIM mean (std) per scale, model beside bicubic."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from afm_sr.atomic import write_atomically
from afm_sr.metrics import mean_std
from afm_sr.report import stats


def summarize(records: Iterable[Mapping[str, Any]], by_material: bool = False) -> list[dict[str, Any]]:
    """One row per (material,) scale and method: n, psnr_mean, psnr_std, ssim_mean, ssim_std.

    Methods keep the order in which they first appear, bicubic first (so model columns follow the order
    the checkpoints were given in).
    """
    records = list(records)
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in records:
        key = (r["material"] if by_material else "all", int(r["scale"]), r["method"])
        groups.setdefault(key, []).append(r)
    rank = {m: i for i, m in enumerate(stats.method_order(records))}
    rows = []
    for (material, scale, method), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], rank[kv[0][2]])):
        pm, ps = mean_std([r["psnr"] for r in rs])
        sm, ss = mean_std([r["ssim"] for r in rs])
        rows.append({"material": material, "scale": scale, "method": method, "n": len(rs),
                     "psnr_mean": pm, "psnr_std": ps, "ssim_mean": sm, "ssim_std": ss})
    return rows


def to_markdown(rows: Sequence[Mapping[str, Any]], caption: str = "") -> str:
    """Table 1 layout: one line per (material, scale), PSNR and SSIM of each method as mean (std)."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    keys = list(dict.fromkeys((r["material"], r["scale"]) for r in rows))
    cell = {(r["material"], r["scale"], r["method"]): r for r in rows}
    head = ["material", "scale", "n"] + [f"{m} PSNR" for m in methods] + [f"{m} SSIM" for m in methods]
    if "bicubic" in methods and len(methods) > 1:
        head += [f"{m} gain dB" for m in methods if m != "bicubic"]
    lines = ([f"**{caption}**", ""] if caption else []) + ["| " + " | ".join(head) + " |",
                                                           "|" + "---|" * len(head)]
    for material, scale in keys:
        here = [cell.get((material, scale, m)) for m in methods]
        n = max((c["n"] for c in here if c), default=0)
        vals = [f"{c['psnr_mean']:.2f} ({c['psnr_std']:.2f})" if c else "-" for c in here]
        vals += [f"{c['ssim_mean']:.4f} ({c['ssim_std']:.4f})" if c else "-" for c in here]
        if "bicubic" in methods and len(methods) > 1:
            b = cell.get((material, scale, "bicubic"))
            vals += [f"{cell[(material, scale, m)]['psnr_mean'] - b['psnr_mean']:+.2f}"
                     if b and (material, scale, m) in cell else "-" for m in methods if m != "bicubic"]
        lines.append("| " + " | ".join([material, f"x{scale}", str(n), *vals]) + " |")
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The summary rows as CSV text (one line per material, scale and method)."""
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` atomically (``afm_sr.atomic.write_atomically``: temp file beside it, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically({path: lambda tmp: tmp.write_text(text, encoding="utf-8")}, overwrite=True)
    return path


WILCOXON_CAPTION = ("Gain over bicubic per image (model - bicubic on the same image and scale), mean (std); "
                    "improved = share of images with higher PSNR; p = two-sided Wilcoxon signed-rank test")


def write_table1(records: Sequence[Mapping[str, Any]], out_dir: Path, caption: str) -> dict[str, Path]:
    """Write Table 1 (md/csv, overall and per material), the paired Wilcoxon tests and every record; return paths.

    table1.md holds Table 1, the per-material table and the paired tests; the CSV files hold the same rows
    for other tools (``wilcoxon.csv`` one line per scale and model).
    """
    out_dir = Path(out_dir)
    overall, per_material = summarize(records), summarize(records, by_material=True)
    paired = stats.paired_comparison(records)
    md = to_markdown(overall, caption) + "\n" + to_markdown(per_material, "Per material")
    if paired:
        md += "\n" + stats.to_markdown(paired, WILCOXON_CAPTION)
    return {"table1.md": write_text(out_dir / "table1.md", md),
            "table1.csv": write_text(out_dir / "table1.csv", to_csv(overall)),
            "table1_per_material.csv": write_text(out_dir / "table1_per_material.csv", to_csv(per_material)),
            "wilcoxon.csv": write_text(out_dir / "wilcoxon.csv", to_csv(paired)),
            "records.csv": write_text(out_dir / "records.csv", to_csv(list(records)))}
