import numpy as np
import pytest

from afm_sr.errors import InputError
from afm_sr.preprocess import align_rows, check_heights, fit_normalization, level, normalize, plane_level


def test_normalize_clips_and_zscores(rng):
    h = rng.normal(5e-9, 2e-9, (64, 64))
    h[0, 0] = 1e-6  # a spike far outside the 97.5th percentile
    z, stats = normalize(h)
    assert abs(z.mean()) < 1e-9 and abs(z.std() - 1) < 1e-9
    assert stats.hi < 1e-6 and z.max() == pytest.approx(stats.z_range[1])


def test_normalization_inverts_inside_clip(rng):
    h = rng.normal(0, 3e-9, (32, 40))
    stats = fit_normalization(h)
    inside = np.clip(h, stats.lo, stats.hi)
    np.testing.assert_allclose(stats.invert(stats.apply(h)), inside, rtol=0, atol=1e-20)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.full((8, 8), 3e-9), "constant"),
        (np.array([[np.nan, 1.0], [2.0, 3.0]]), "NaN"),
        (np.array([[np.inf, 1.0], [2.0, 3.0]]), "NaN or Inf"),
        (np.ones((1, 1)), "too small"),
        (np.ones(5), "2-D"),
    ],
)
def test_bad_heights_are_clear_errors(array, match):
    with pytest.raises(InputError, match=match):
        check_heights(array)


def test_plane_level_removes_tilt(rng):
    yy, xx = np.mgrid[0:32, 0:48]
    bumps = rng.normal(0, 1e-10, (32, 48))
    out = plane_level(2e-9 * xx - 1e-9 * yy + 5e-9 + bumps)
    assert np.abs(out - (bumps - bumps.mean())).max() < 1e-10


def test_align_rows_removes_line_offsets(rng):
    surface = np.tile(np.sin(np.linspace(0, 6, 64)) * 1e-9, (32, 1))
    offsets = rng.normal(0, 5e-9, (32, 1))
    out = align_rows(surface + offsets)
    # every row now equals the surface up to one global constant
    assert np.ptp(out - surface) < 1e-15 * 1e6


def test_level_composes_steps(rng):
    h = rng.normal(0, 1e-9, (16, 16))
    np.testing.assert_allclose(level(h, plane=False, rows=False), h)
    np.testing.assert_allclose(level(h, plane=True, rows=False), plane_level(h))
