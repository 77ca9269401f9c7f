from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from afm_sr.materials.instrument import (
    Instrument,
    drift,
    line_offsets,
    noisy_lines,
    scan_noise,
    spectral_noise,
    tilt_bow,
    tip_dilate,
    tip_profile,
)

OFF = dict(tip_radius_m=0, tip_half_angle_deg=20.0, drift_px=0, creep_px=0, creep_lines=10.0, line_offset=0,
           noisy_lines=0, noisy_line_amplitude=0.3, pink_noise=0, white_noise=0, tilt=None, bow=None)
#: The instrument training composes into every synthetic material (the one place its ranges are written).
TRAINING = Path(__file__).resolve().parents[2] / "conf" / "instrument" / "default.yaml"


def surface(seed: int = 0, n: int = 64) -> np.ndarray:
    return 20e-9 * spectral_noise(np.random.default_rng(seed), (n, n), exponent=3.0)


def test_spectral_noise_is_normalised_and_slope_follows_exponent() -> None:
    rng = np.random.default_rng(0)
    white, rough = spectral_noise(rng, (128, 128)), spectral_noise(rng, (128, 128), exponent=3.0)
    assert abs(white.std() - 1) < 1e-9 and abs(rough.mean()) < 1e-9
    # rough surfaces are smooth from pixel to pixel, white noise is not
    assert np.abs(np.diff(rough, axis=1)).mean() < 0.3 * np.abs(np.diff(white, axis=1)).mean()


def test_tip_dilation_never_lowers_a_pixel_and_broadens_a_spike() -> None:
    h = np.zeros((41, 41))
    h[20, 20] = 50e-9
    out = tip_dilate(h, 5e-9, radius_m=10e-9, half_angle_deg=20)
    assert (out >= h).all()
    assert out[20, 20] == pytest.approx(50e-9)
    assert (out > 1e-9).sum() > 9  # the spike is imaged as the tip's shape
    rough = surface()
    assert (tip_dilate(rough, 10e-9, 20e-9) >= rough).all()
    assert np.array_equal(tip_dilate(rough, 10e-9, 0.0), rough)


def test_tip_profile_is_zero_at_apex_and_rises() -> None:
    tip = tip_profile(3.0, 20.0, max_height=100.0, max_px=5)
    assert tip[5, 5] == 0
    assert np.nanmin(tip) == 0
    assert tip[5, 9] > tip[5, 7] > tip[5, 6]


def test_drift_off_is_identity_and_on_shifts_later_lines() -> None:
    ramp = np.tile(np.arange(64.0), (64, 1))
    assert np.array_equal(drift(ramp), ramp)
    shifted = drift(ramp, shift_x_px=3.0)
    diff = (shifted - ramp)[:, 10:-10].mean(axis=1)
    assert abs(diff[0]) < 1e-6 and diff[-1] == pytest.approx(3.0, abs=1e-3)


def test_line_artefacts_and_noise() -> None:
    rng = np.random.default_rng(0)
    offsets = line_offsets(rng, 100, 0.1)
    assert offsets.shape == (100,) and offsets.std() == pytest.approx(0.1)
    assert not line_offsets(rng, 100, 0.0).any()
    streaks = noisy_lines(rng, (32, 32), 2, 1.0)
    assert 1 <= (np.abs(streaks).sum(axis=1) > 0).sum() <= 2
    assert not noisy_lines(rng, (32, 32), 0, 1.0).any()
    assert scan_noise(rng, (16, 16), 0.1, 0.1).std() > 0.05
    bow = tilt_bow((32, 32), 0.0, 0.0, 1.0)
    assert abs(bow.mean()) < 0.05 and bow[0, 0] > bow[16, 16]


def test_instrument_all_off_is_identity_and_each_switch_changes_image() -> None:
    h = surface(1)
    assert np.array_equal(Instrument(**OFF)(np.random.default_rng(0), h, 10e-9), h)
    for key, value in [("tip_radius_m", 20e-9), ("drift_px", 2.0), ("creep_px", 2.0), ("line_offset", 0.05),
                       ("noisy_lines", 2.0), ("pink_noise", 0.02), ("white_noise", 0.02), ("tilt", 0.5),
                       ("bow", 0.2)]:
        out = Instrument(**{**OFF, key: value})(np.random.default_rng(0), h, 10e-9)
        assert out.shape == h.shape and np.isfinite(out).all()
        assert np.abs(out - h).max() > 1e-3 * h.std(), key


def test_instrument_is_reproducible() -> None:
    spec = OmegaConf.to_container(OmegaConf.load(TRAINING))
    h, inst = surface(2), Instrument(**{k: v for k, v in spec.items() if k != "_target_"})
    assert np.array_equal(inst(np.random.default_rng(3), h, 10e-9), inst(np.random.default_rng(3), h, 10e-9))
