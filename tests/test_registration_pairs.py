"""A zoom (finer scan of part of an area) is found in the coarse scan to a fraction of a zoom pixel, and an
upscaled coarse window is put on the zoom's grid where the zoom lies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from afm_sr.degrade import imresize
from afm_sr.report.registration import Window, locate_window, ncc_map, resample_to_zoom

RATIO = 3  # the zoom's pixels are 3x finer, as a 10 um scan and a 3.3 um zoom at one pixel count


@pytest.fixture
def surface(rng) -> np.ndarray:
    """A smooth, non-periodic 'topography' (nm) at the zoom's pixel size, 600 x 600."""
    return 20 * ndimage.gaussian_filter(rng.normal(size=(600, 600)), 6)


def coarse_scan(surface: np.ndarray) -> np.ndarray:
    """Every coarse pixel the mean of RATIO x RATIO fine pixels: pixel (i, j) centred on fine (3i + 1, 3j + 1)."""
    n = surface.shape[0] // RATIO
    return surface[: n * RATIO, : n * RATIO].reshape(n, RATIO, n, RATIO).mean(axis=(1, 3))


@pytest.mark.parametrize(("top_left", "scale", "angle"), [((201.3, 148.7), 1.0, 0.0), ((90.6, 260.2), 1.03, 0.8),
                                                         ((300.0, 40.45), 0.98, -1.2)])
def test_locate_window_recovers_a_shifted_scaled_turned_zoom(surface, rng, top_left, scale, angle):
    truth_fine = Window(top_left, scale, angle)  # fine-pixel coordinates of the zoom's grid
    rows, cols = np.meshgrid(np.arange(200.0), np.arange(200.0), indexing="ij")
    zoom = ndimage.map_coordinates(surface, truth_fine.to_coarse(rows, cols), order=3)
    zoom += 0.02 * zoom.std() * rng.normal(size=zoom.shape)
    fit = locate_window(coarse_scan(surface), zoom, step=1 / RATIO)
    # the true window in coarse pixels: fine coordinate f lies at coarse (f - 1) / RATIO
    ys, xs = fit.window.to_coarse(rows, cols)
    ty, tx = truth_fine.to_coarse(rows, cols)
    error_zoom_px = np.hypot(ys - (ty - 1) / RATIO, xs - (tx - 1) / RATIO) * RATIO / scale
    assert error_zoom_px.max() < 0.5
    assert fit.ncc > 0.9 and fit.runner_up < fit.ncc - 0.2 and fit.coverage == 1.0


def test_locate_window_reports_a_zoom_that_is_not_there(surface, rng):
    elsewhere = 20 * ndimage.gaussian_filter(rng.normal(size=(200, 200)), 6)
    fit = locate_window(coarse_scan(surface), elsewhere, step=1 / RATIO)
    assert fit.ncc < 0.8


def test_ncc_map_is_one_where_the_template_was_cut(surface):
    scores = ncc_map(surface, 2 * surface[40:90, 70:100] + 5)
    assert np.unravel_index(np.argmax(scores), scores.shape) == (40, 70)
    assert scores.max() == pytest.approx(1.0)
    assert np.all(np.abs(scores) <= 1 + 1e-9)


def test_a_zoom_hanging_over_the_scans_edge_is_found_with_its_coverage(surface):
    truth_fine = Window((-45.0, 330.5), 1.0, 0.0)  # a quarter of the zoom lies above the scanned area
    rows, cols = np.meshgrid(np.arange(180.0), np.arange(180.0), indexing="ij")
    zoom = ndimage.map_coordinates(surface, truth_fine.to_coarse(rows, cols), order=3, mode="reflect")
    fit = locate_window(coarse_scan(surface), zoom, step=1 / RATIO)
    ys, xs = fit.window.to_coarse(rows, cols)
    ty, tx = truth_fine.to_coarse(rows, cols)
    assert np.hypot(ys - (ty - 1) / RATIO, xs - (tx - 1) / RATIO).max() * RATIO < 0.5
    assert fit.coverage == pytest.approx(0.75, abs=0.05)


def test_ncc_map_over_the_edge_scores_the_overlap_only(surface):
    template = surface[0:40, 0:40]
    scores = ncc_map(surface[10:, 10:], template, min_overlap=0.5)  # the template's best place starts at (-10, -10)
    assert np.unravel_index(np.argmax(scores), scores.shape) == (39 - 10, 39 - 10)
    assert scores.max() == pytest.approx(1.0)


@pytest.mark.parametrize("scale", [2, 4])
def test_resample_to_zoom_puts_an_upscaled_window_on_the_zoom_grid(rng, scale):
    smooth = 20 * ndimage.gaussian_filter(rng.normal(size=(600, 600)), 15)  # bicubic can restore it from 1/3
    truth_fine = Window((150.4, 210.7), 1.02, 0.7)
    rows, cols = np.meshgrid(np.arange(150.0), np.arange(150.0), indexing="ij")
    zoom = ndimage.map_coordinates(smooth, truth_fine.to_coarse(rows, cols), order=3)
    coarse = coarse_scan(smooth)
    corner = (40, 60)
    box = coarse[corner[0]:corner[0] + 70, corner[1]:corner[1] + 70]
    upscaled = imresize(torch.from_numpy(box), scale=scale).numpy()

    def rms_error(origin_shift: float) -> float:
        (oy, ox), step, angle = truth_fine.origin, truth_fine.step, truth_fine.angle_deg
        window = Window(((oy - 1) / RATIO + origin_shift, (ox - 1) / RATIO), step / RATIO, angle)
        return float(np.sqrt(np.mean((resample_to_zoom(upscaled, scale, window, corner, zoom.shape) - zoom) ** 2)))

    assert rms_error(0.0) < 0.01 * zoom.std()
    assert rms_error(0.5 / RATIO) > 3 * rms_error(0.0)  # half a zoom pixel off is seen
