"""Paired Wilcoxon tests and several-model tables (afm_sr.report.stats, afm_sr.report.tables)."""

from __future__ import annotations

import math

import pytest

from afm_sr.report import paired_comparison, summarize, to_markdown, wilcoxon_p, write_table1
from afm_sr.report.stats import method_order


def _records(gains: dict[str, list[float]], scale: int = 2, material: str = "ceramic") -> list[dict]:
    """Bicubic at 30 dB / SSIM 0.8 on each image; each model adds its per-image gains (SSIM gain = dB / 100)."""
    n = len(next(iter(gains.values())))
    out = [{"material": material, "image": f"im{i}", "scale": scale, "method": "bicubic", "psnr": 30.0, "ssim": 0.8}
           for i in range(n)]
    for method, g in gains.items():
        out += [{"material": material, "image": f"im{i}", "scale": scale, "method": method, "psnr": 30.0 + d,
                 "ssim": 0.8 + d / 100} for i, d in enumerate(g)]
    return out


@pytest.mark.parametrize(("diffs", "p"), [
    ([1, 2, 3, 4, 5], 2 / 32),     # all 5 ranks positive: the most extreme of 2^5 sign patterns, two-sided
    ([1, -2, 3, 4, 5], 6 / 32),    # W- = 2: sign patterns with W- <= 2 are {}, {1}, {2}: 3 of 32, two-sided
    ([-1, -2, -3, -4, -5], 2 / 32),
    ([0, 0, 0], 1.0),
])
def test_wilcoxon_hand_cases(diffs, p):
    assert wilcoxon_p(diffs) == pytest.approx(p)


def test_wilcoxon_of_nothing_is_nan():
    assert math.isnan(wilcoxon_p([]))


def test_paired_comparison_pairs_images_and_reports_gain():
    records = _records({"mono": [1, 2, 3, 4, 5], "multi": [1, -2, 3, 4, 5]})
    records.append({"material": "ceramic", "image": "unpaired", "scale": 2, "method": "mono", "psnr": 0.0,
                    "ssim": 0.0})  # no bicubic row for this image: ignored
    rows = paired_comparison(records)
    assert [(r["method"], r["n"]) for r in rows] == [("mono", 5), ("multi", 5)]
    mono, multi = rows
    assert mono["psnr_gain_mean"] == pytest.approx(3.0) and mono["psnr_gain_std"] == pytest.approx(math.sqrt(2))
    assert mono["psnr_p"] == pytest.approx(2 / 32) and mono["ssim_p"] == pytest.approx(2 / 32)
    assert mono["improved"] == 1.0 and multi["improved"] == 0.8
    assert multi["psnr_p"] == pytest.approx(6 / 32)
    assert multi["ssim_gain_mean"] == pytest.approx(0.022)


def test_paired_comparison_per_material_and_scale():
    records = _records({"m": [1, 1, 1]}, scale=4, material="a") + _records({"m": [-1, -1]}, scale=2, material="b")
    overall = paired_comparison(records)
    assert [(r["scale"], r["n"], r["psnr_gain_mean"]) for r in overall] == [(2, 2, -1.0), (4, 3, 1.0)]
    per = paired_comparison(records, by_material=True)
    assert [(r["material"], r["scale"]) for r in per] == [("a", 4), ("b", 2)]


def test_models_keep_the_order_they_were_given_in():
    records = _records({"multi": [1, 1], "mono": [2, 2]})
    assert method_order(reversed(records)) == ["bicubic", "mono", "multi"]
    rows = summarize(records)
    assert [r["method"] for r in rows] == ["bicubic", "multi", "mono"]
    md = to_markdown(rows)
    head = md.splitlines()[0]
    assert head.index("bicubic PSNR") < head.index("multi PSNR") < head.index("mono PSNR")
    assert "multi gain dB" in head and "| +1.00 | +2.00 |" in md


def test_write_table1_adds_the_paired_tests(tmp_path):
    paths = write_table1(_records({"mono": [1, 2, 3, 4, 5]}), tmp_path, "cap")
    md = paths["table1.md"].read_text()
    assert "Wilcoxon" in md and "| all | x2 | mono | 5 | +3.00 (1.41) | 100% | 0.0625 |" in md
    lines = paths["wilcoxon.csv"].read_text().splitlines()
    assert lines[0].startswith("material,scale,method,n,psnr_gain_mean") and len(lines) == 2
