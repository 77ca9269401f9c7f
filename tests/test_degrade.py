import numpy as np
import pytest
import torch

from afm_sr.degrade import BicubicDegradation, check_scale, degrade, imresize, modcrop
from afm_sr.errors import InputError

resize_right = pytest.importorskip("resize_right", reason="reference imresize (resize-right) not installed")


@pytest.mark.parametrize("scale", [1 / 2, 1 / 4, 1 / 8, 2, 4, 8])
def test_imresize_matches_matlab_reference(scale, rng):
    """resize-right reproduces MATLAB's imresize (cubic, antialiased) with symmetric padding."""
    x = rng.random((96, 72))
    ours = imresize(torch.from_numpy(x), scale).numpy()
    ref = resize_right.resize(x, scale_factors=scale, interp_method=resize_right.interp_methods.cubic,
                              antialiasing=True, pad_mode="symmetric")
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-4


def test_imresize_known_values():
    # a constant stays constant, a linear ramp stays linear away from the border
    assert torch.allclose(imresize(torch.full((16, 16), 3.0), 0.5), torch.full((8, 8), 3.0))
    ramp = torch.arange(32, dtype=torch.float64).repeat(32, 1)
    up = imresize(ramp, 2)
    assert torch.allclose(up[:, 8:-8].diff(dim=1), torch.full_like(up[:, 8:-9], 0.5), atol=1e-9)


def test_imresize_batched_equals_single(rng):
    x = torch.from_numpy(rng.random((3, 1, 40, 40)))
    batch = imresize(x, 0.25)
    assert torch.allclose(batch[1, 0], imresize(x[1, 0], 0.25))


def test_bicubic_degradation_shape_and_closeness(rng):
    hr = torch.from_numpy(rng.random((64, 64))).float()
    deg = BicubicDegradation()
    assert deg.downscale(hr, 4).shape == (16, 16)
    out = degrade(deg, hr, 2)[1]
    assert out.shape == hr.shape and float((out - hr).abs().mean()) < 0.5


@pytest.mark.parametrize(("scale", "shape"), [(3, (64, 64)), (2.5, (64, 64)), (8, (10, 64)), (16, (64, 64))])
def test_bad_scales_are_clear_errors(scale, shape):
    with pytest.raises(InputError):
        check_scale(scale, shape)


def test_modcrop():
    assert modcrop(torch.zeros(2, 1, 50, 67), 8).shape == (2, 1, 48, 64)
