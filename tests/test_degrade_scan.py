import math

import pytest
import torch

from afm_sr.degrade import BicubicDegradation, MixedDegradation, ScanDegradation, degrade


def quiet() -> ScanDegradation:
    return ScanDegradation(line_noise=0, white_noise=0, drift_px=0)


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize("size", [(64, 48), (37, 29), (41, 41)])
def test_lr_and_output_shapes(scale: int, size: tuple[int, int]) -> None:
    hr = torch.randn(2, 1, *size)
    deg = ScanDegradation()
    g = torch.Generator().manual_seed(0)
    lr = deg.downscale(hr, scale, g)
    assert lr.shape == (2, 1, math.ceil(size[0] / scale), math.ceil(size[1] / scale))
    assert degrade(deg, hr, scale, g)[1].shape == hr.shape


def test_odd_scale_takes_exact_pixels() -> None:
    hr = torch.randn(1, 48, 48, dtype=torch.float64)
    assert torch.equal(quiet().downscale(hr, 3), hr[..., 1::3, 1::3])


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_point_samples_keep_what_area_averages_lose(scale: int) -> None:
    # a wave at the LR Nyquist frequency, phased so the LR pixel centres fall on its crests and troughs
    x = torch.arange(128, dtype=torch.float64)
    wave = torch.cos(math.pi * (x - (scale / 2 - 0.5)) / scale)
    hr = wave[None, :].expand(128, 128).clone()
    point = quiet().downscale(hr, scale)[2:-2, 2:-2]
    area = BicubicDegradation().downscale(hr, scale)[2:-2, 2:-2]
    assert point.abs().min() > 0.8
    assert area.abs().max() < 0.5


def test_same_generator_seed_same_result_and_noise_differs_across_seeds() -> None:
    hr = torch.randn(1, 64, 64)
    deg = ScanDegradation(line_noise=0.05, white_noise=0.03, drift_px=1.0)
    a = degrade(deg, hr, 4, torch.Generator().manual_seed(1))[1]
    b = degrade(deg, hr, 4, torch.Generator().manual_seed(1))[1]
    c = degrade(deg, hr, 4, torch.Generator().manual_seed(2))[1]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_line_noise_is_constant_along_each_line() -> None:
    hr = torch.zeros(1, 64, 64)
    deg = ScanDegradation(line_noise=0.1, white_noise=0, drift_px=0)
    lr = deg.downscale(hr, 4, torch.Generator().manual_seed(0))
    assert torch.allclose(lr, lr[..., :1].expand_as(lr))
    assert lr.std() > 0.01


def test_drift_shifts_later_lines_more() -> None:
    ramp = torch.arange(64, dtype=torch.float64)[None, :].expand(64, 64).clone()
    deg = ScanDegradation(line_noise=0, white_noise=0, drift_px=4.0)
    lr = deg.downscale(ramp, 4, torch.Generator().manual_seed(3))
    shift = (lr - quiet().downscale(ramp, 4))[:, 2:-2].mean(dim=1)
    assert shift[0].abs() < 1e-9
    assert shift.abs()[-1] > 0.5


def test_mixed_uses_every_member_and_respects_zero_weight() -> None:
    hr = torch.randn(1, 32, 32)
    bicubic = degrade(BicubicDegradation(), hr, 2)[1]
    mixed = MixedDegradation([BicubicDegradation(), ScanDegradation()], [1.0, 1.0])
    g = torch.Generator().manual_seed(0)
    picks = {torch.equal(degrade(mixed, hr, 2, g)[1], bicubic) for _ in range(20)}
    assert picks == {True, False}
    only_bicubic = MixedDegradation([BicubicDegradation(), ScanDegradation()], [1.0, 0.0])
    assert all(torch.equal(degrade(only_bicubic, hr, 2, g)[1], bicubic) for _ in range(5))
    with pytest.raises(ValueError):
        MixedDegradation([BicubicDegradation()], [1.0, 2.0])
