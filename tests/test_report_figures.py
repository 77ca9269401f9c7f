"""Figures render (one colour scale, right data), registration finds known sub-pixel shifts, W&B payloads."""

from __future__ import annotations

import numpy as np
import pytest
import wandb
from matplotlib.image import AxesImage
from scipy import ndimage

from afm_sr.report import paired_comparison
from afm_sr.report.figures import (
    Example,
    comparison_panel,
    error_grid,
    example_figures,
    gain_bars,
    panel_grid,
    profiles,
    save_png,
    surfaces,
)
from afm_sr.report.registration import apply_shift, overlap, phase_correlation
from afm_sr.report.wandb import log_report

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def surface(rng) -> np.ndarray:
    """A smooth, non-periodic 'topography' in nm, 200 x 200."""
    return 20 * ndimage.gaussian_filter(rng.normal(size=(200, 200)), 3)


@pytest.mark.parametrize("true", [(2.37, -1.62), (-0.4, 0.25), (0.0, 3.5)])
def test_phase_correlation_recovers_a_subpixel_shift(surface, rng, true):
    moved = ndimage.shift(surface, true, order=3, mode="reflect")
    ref, mov = surface[50:150, 50:150], moved[50:150, 50:150] + 0.05 * surface.std() * rng.normal(size=(100, 100))
    dy, dx = phase_correlation(ref, mov)
    assert (dy, dx) == pytest.approx((-true[0], -true[1]), abs=0.06)
    back = apply_shift(mov, (dy, dx))
    rows, cols = overlap(ref.shape, (dy, dx), margin=2)
    assert np.sqrt(np.mean((back[rows, cols] - ref[rows, cols]) ** 2)) < 0.1 * ref.std()


def test_overlap_drops_the_rows_a_shift_invents():
    assert overlap((10, 20), (2.5, -1.2)) == (slice(3, 10), slice(0, 18))
    assert overlap((10, 20), (0.0, 0.0), margin=1) == (slice(1, 9), slice(1, 19))
    with pytest.raises(ValueError, match="no overlap"):
        overlap((4, 4), (5.0, 0.0))


def test_phase_correlation_needs_equal_shapes():
    with pytest.raises(ValueError, match="one shape"):
        phase_correlation(np.zeros((8, 8)), np.zeros((8, 9)))


def _example(surface: np.ndarray) -> Example:
    hr = surface[:64, :64]
    low = {s: hr[s // 2::s, s // 2::s] for s in (2, 4, 8)}
    up = {s: np.kron(v, np.ones((s, s))) for s, v in low.items()}
    return Example("ceramic: im0", hr, low, up, {"mono": {s: v + 1 for s, v in up.items()},
                                                 "multi": {s: 0.5 * (v + hr) for s, v in up.items()}}, 3e-6)


def test_panel_grid_shares_one_colour_scale(surface):
    ex = _example(surface)
    rows = {f"x{s}": {"LR": ex.low[s], "bicubic": ex.bicubic[s], "HR": ex.hr} for s in (2, 4)}
    fig = panel_grid(rows, scan_size_m=3e-6)
    clims = {im.get_clim() for ax in fig.axes for im in ax.get_images() if isinstance(im, AxesImage)}
    assert clims == {tuple(np.percentile(ex.hr, [0.5, 99.5]))}
    assert sum(len(ax.get_images()) for ax in fig.axes) == 6


def test_error_grid_shows_absolute_errors(surface):
    hr = surface[:32, :32]
    fig = error_grid({"x2": {"a": hr + 3.0}, "x4": {"a": hr - 1.0}}, {"x2": hr, "x4": hr})
    shown = [im.get_array() for ax in fig.axes for im in ax.get_images()]
    assert [float(np.mean(a)) for a in shown] == pytest.approx([3.0, 1.0])
    assert "RMS 3" in fig.axes[0].get_title()


def test_profiles_plot_the_same_physical_row(surface):
    ex = _example(surface)
    fig = profiles({"x4": {"LR (1/4)": ex.low[4], "HR": ex.hr}}, row=10, scan_size_m=3e-6)
    lr_line, hr_line = fig.axes[0].get_lines()
    np.testing.assert_allclose(hr_line.get_ydata(), ex.hr[10])
    np.testing.assert_allclose(lr_line.get_ydata(), ex.low[4][10 // 4])
    assert hr_line.get_xdata()[-1] == pytest.approx(3.0 * 63.5 / 64)


def test_surfaces_are_downsampled_on_one_z_axis(surface):
    fig = surfaces({"bicubic": surface[:120, :120], "HR": surface[:120, :120] * 2}, scan_size_m=2e-6, max_px=40)
    assert [ax.get_zlim() for ax in fig.axes] == [tuple(np.percentile(surface[:120, :120] * 2, [0.5, 99.5]))] * 2
    fig.canvas.draw()
    assert len(fig.axes[0].collections[0].get_paths()) == 39 * 39  # 120 px / step 3 = 40 points per side


def test_gain_bars_show_the_mean_gain_per_scale_and_model():
    records = []
    for i, d in enumerate([1.0, 2.0, 3.0]):
        for s, k in ((2, 1.0), (4, -1.0)):
            records += [{"material": "a", "image": f"im{i}", "scale": s, "method": "bicubic", "psnr": 20.0,
                         "ssim": 0.5},
                        {"material": "a", "image": f"im{i}", "scale": s, "method": "mono", "psnr": 20.0 + k * d,
                         "ssim": 0.5 + k * d / 100}]
    fig = gain_bars(paired_comparison(records))
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == pytest.approx([2.0, -2.0])
    assert [p.get_height() for p in fig.axes[1].patches] == pytest.approx([0.02, -0.02])


def test_example_figures_render_to_png(surface, tmp_path):
    figs = example_figures(_example(surface))
    assert sorted(figs) == ["errors", "panels", "profiles", "surface"]
    for name, fig in figs.items():
        assert save_png(fig, tmp_path / f"{name}.png").read_bytes()[:8] == PNG
    assert "x2 mono" in {t.get_text() for t in figs["panels"].findobj(lambda o: hasattr(o, "get_text"))}


class _Run:
    """Stands in for a W&B run: keeps what was logged."""

    def __init__(self) -> None:
        self.logged: dict = {}

    def log(self, payload: dict) -> None:
        self.logged.update(payload)


def test_log_report_sends_tables_and_images(surface, tmp_path):
    png = save_png(example_figures(_example(surface))["panels"], tmp_path / "p.png")
    run = _Run()
    log_report(run, {"table1": [{"scale": 2, "method": "bicubic", "psnr_mean": 30.0}]}, {"panels_0": png})
    assert isinstance(run.logged["eval/table1"], wandb.Table)
    assert run.logged["eval/table1"].columns == ["scale", "method", "psnr_mean"]
    assert run.logged["eval/table1"].data == [[2, "bicubic", 30.0]]
    assert isinstance(run.logged["eval/panels_0"], wandb.Image)


def test_profiles_of_maps_with_other_pixel_counts_use_the_same_physical_row(surface):
    fine, coarse = surface[:128, :128], surface[:128:2, :128:2]
    fig = profiles({"64 px": {"HR": coarse}, "128 px": {"HR": fine}}, row=16)
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata(), coarse[16])
    np.testing.assert_allclose(fig.axes[1].get_lines()[0].get_ydata(), fine[33])  # (16.5 / 64) * 128


def test_zoom_cuts_the_same_area_from_every_image_whatever_its_pixels():
    rng = np.random.default_rng(0)
    images = {"input": rng.random((256, 256)), "x2": rng.random((512, 512))}
    zoom = ((95 / 512, (95 + 96) / 512), (33 / 512, (33 + 96) / 512))  # odd output offsets: half-pixel input starts
    fig = comparison_panel(images, zoom=zoom)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title().startswith("zoom")]
    assert titles == ["zoom: 48x48 px", "zoom: 96x96 px"]
