import math

import numpy as np
import pytest
import torch

from afm_sr.data import PatchDataset
from afm_sr.data.prepare import prepare
from afm_sr.degrade import BicubicDegradation, imresize
from afm_sr.degrade.acquisition import (
    Acquisition,
    AcquisitionDegradation,
    FixedAcquisition,
    acquire,
    feedback_lag,
    tip_dilate,
)
from afm_sr.io import HeightMap

FAMILY = {"tip": (0.1, 2.0), "tip_prob": 0.3, "fast_width": (0.0, 1.0), "probe_sigma": (0.0, 0.5),
          "line_offset": (-0.5, 0.5), "lag": 0.0, "lag_prob": 0.0, "retrace_prob": 0.5, "white": (0.0, 0.03),
          "line": (0.0, 0.05), "pink": 0.0, "drift": (0.0, 0.25)}


def ramp(n: int = 64) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(n, dtype=torch.float64), torch.arange(n, dtype=torch.float64), indexing="ij")
    return 0.3 * x + 0.1 * y


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize("setting", [{}, {"fast_width": 1.0}, {"probe_sigma": 0.5},
                                     {"fast_width": 0.7, "probe_sigma": 0.3}])
def test_a_ramp_stays_where_matlab_puts_its_pixel_centres(scale, setting):
    lr = acquire(ramp(), scale, Acquisition(**setting))
    ref = imresize(ramp(), 1 / scale)
    assert torch.allclose(lr[2:-2, 2:-2], ref[2:-2, 2:-2], atol=1e-9)


@pytest.mark.parametrize("scale", [2, 4])
def test_a_line_offset_moves_the_lines_by_that_many_lr_pixels(scale):
    shifted = acquire(ramp(), scale, Acquisition(line_offset=0.5))
    ref = imresize(ramp(), 1 / scale)
    assert torch.allclose((shifted - ref)[2:-2, 2:-2], torch.full_like(ref[2:-2, 2:-2], 0.1 * 0.5 * scale))


def test_tip_dilation_is_a_max_plus_paraboloid_not_a_blur():
    img = torch.zeros(21, 21, dtype=torch.float64)
    img[10, 10] = 1.0  # a spike: the tip draws an inverted paraboloid of its own shape around it
    out = tip_dilate(img, 0.1, 5)
    d2 = (torch.arange(21, dtype=torch.float64) - 10) ** 2
    expected = (1 - 0.1 * (d2[:, None] + d2[None, :])).clamp_min(0)
    near = (d2[:, None] <= 25) & (d2[None, :] <= 25)
    assert torch.allclose(out[near], expected[near])
    pit = tip_dilate(-img, 0.1, 5)  # a one-pixel pit: the tip reaches only as deep as its side allows
    assert float(pit[10, 10]) == pytest.approx(-0.1) and float(pit.abs().sum()) == pytest.approx(0.1)
    # on a slope a the tip touches d = a / (2 c) uphill: the ramp rises by a**2 / (4 c) per axis, shape kept
    lifted = (tip_dilate(ramp(), 0.05, 8) - ramp())[8:-8, 8:-8]
    assert torch.allclose(lifted, torch.full_like(lifted, 0.3**2 / 0.2 + 0.1**2 / 0.2))


def test_feedback_lag_trails_the_scan_direction():
    step = torch.zeros(1, 40, dtype=torch.float64)
    step[:, 20:] = 1.0
    trace, retrace = feedback_lag(step, 3.0), feedback_lag(step, 3.0, retrace=True)
    assert float(trace[0, 20]) < 0.5 and float(trace[0, 19]) == 0.0  # rises late, after the edge
    assert float(retrace[0, 20]) == 1.0 and 0.5 < float(retrace[0, 19]) < 1.0  # right to left: falls late
    assert torch.allclose(trace.flip(-1), 1 - feedback_lag(1 - step.flip(-1), 3.0, retrace=True))


def test_noise_is_seeded_and_of_the_asked_size():
    hr = torch.zeros(256, 256, dtype=torch.float64)
    acq = Acquisition(white=0.02, line=0.05, pink=0.03)
    a = acquire(hr, 2, acq, torch.Generator().manual_seed(3))
    b = acquire(hr, 2, acq, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    expected = math.sqrt(0.02**2 + 0.05**2 + 0.03**2)
    assert float(a.std()) == pytest.approx(expected, rel=0.25)


def test_the_family_draws_each_effect_within_its_range_and_probability():
    family = AcquisitionDegradation(**FAMILY)
    g = torch.Generator().manual_seed(0)
    draws = [family.sample(g) for _ in range(400)]
    tips = [a.tip for a in draws]
    assert 0.2 < np.mean([t > 0 for t in tips]) < 0.4
    assert all(0.1 <= t <= 2.0 for t in tips if t)
    assert all(a.lag == 0 and a.pink == 0 for a in draws)
    assert all(-0.5 <= a.line_offset <= 0.5 and 0 <= a.fast_width <= 1 for a in draws)
    assert 0.4 < np.mean([a.retrace for a in draws]) < 0.6
    with pytest.raises(ValueError, match="probabilities"):
        AcquisitionDegradation(**{**FAMILY, "tip_prob": 1.5})
    assert FixedAcquisition(tip=1.0).downscale(torch.randn(2, 1, 32, 32), 4).shape == (2, 1, 8, 8)


def test_describe_names_what_is_on():
    assert Acquisition().describe() == "point samples"
    assert Acquisition(lag=0.5, retrace=True, white=0.01).describe() == "lag 0.5, white 0.01, retrace"


def _images(n: int = 3) -> list:
    rng = np.random.default_rng(1)
    return [prepare(HeightMap(rng.standard_normal((64, 64)).cumsum(0).cumsum(1) * 1e-9, (1e-8, 1e-8)), [2, 4, 8],
                    BicubicDegradation(), seed=i) for i in range(n)]


def test_patches_degraded_afresh_match_the_prepared_ones_for_a_fixed_degradation():
    images = _images()
    kwargs = {"patch_size": 16, "length": 6, "batch_size": 4, "lr_patch": 4}
    torch.manual_seed(0)
    offline = [PatchDataset(images, [2, 4, 8], **kwargs)[i] for i in range(6)]
    torch.manual_seed(0)
    online = [PatchDataset(images, [2, 4, 8], degradation=BicubicDegradation(), **kwargs)[i] for i in range(6)]
    for a, b in zip(offline, online, strict=True):
        assert torch.equal(a["target"], b["target"])
        assert torch.allclose(a["low"], b["low"], atol=1e-5) and torch.allclose(a["input"], b["input"], atol=1e-5)


def test_patches_degraded_afresh_draw_a_new_acquisition_each_time():
    images = _images(1)
    ds = PatchDataset(images, [4], patch_size=16, length=2, batch_size=8, lr_patch=4,
                      degradation=AcquisitionDegradation(**FAMILY))
    torch.manual_seed(0)
    b = ds[0]
    # the same crop recorded twice by the family differs; by bicubic it would not
    assert b["low"].shape == (8, 1, 4, 4) and b["input"].shape == b["target"].shape == (8, 1, 16, 16)
    first = ds._fresh(images[0].hr, 4, 2, 2, 4)[0]
    second = ds._fresh(images[0].hr, 4, 2, 2, 4)[0]
    assert not torch.allclose(first, second)
