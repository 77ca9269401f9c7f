import numpy as np

from afm_sr.report import summarize, to_markdown, write_table1
from afm_sr.report.figures import comparison_panel, error_maps, save_png


def _records():
    out = []
    for i, (b, m) in enumerate([(30.0, 31.0), (32.0, 34.0)]):
        for method, v in (("bicubic", b), ("model", m)):
            out.append({"material": "a" if i == 0 else "b", "image": f"im{i}", "scale": 2, "method": method,
                        "psnr": v, "ssim": v / 40})
    return out


def test_summary_mean_std_and_gain():
    rows = summarize(_records())
    assert [(r["method"], r["n"]) for r in rows] == [("bicubic", 2), ("model", 2)]
    assert rows[1]["psnr_mean"] == 32.5 and rows[1]["psnr_std"] == 1.5
    md = to_markdown(rows, "caption")
    assert "32.50 (1.50)" in md and "+1.50" in md and "**caption**" in md


def test_write_table1_files(tmp_path):
    paths = write_table1(_records(), tmp_path, "cap")
    assert all(p.is_file() for p in paths.values())
    assert "| b | x2 | 1 |" in paths["table1.md"].read_text()
    assert paths["table1.csv"].read_text().splitlines()[0].startswith("material,scale,method,n")


def test_figures_render(tmp_path, rng):
    hr = rng.normal(size=(32, 32))
    fig = comparison_panel({"LR": hr[::4, ::4], "bicubic": hr + 0.1, "HR": hr}, scan_size_m=2e-6, row=10)
    p = save_png(fig, tmp_path / "panel.png")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    save_png(error_maps({"bicubic": hr + 0.1}, hr), tmp_path / "err.png")
    assert np.isfinite(hr).all()


def test_caption_states_the_convention_it_measured():
    from afm_sr.report.evaluation import caption

    assert "mapped to [0, 1]" in caption("range01")
    assert "convention paper (z-scored images as they are" in caption("paper") and "[0, 1]" not in caption("paper")
