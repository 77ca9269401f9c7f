import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from afm_sr.metrics import MetricSpec, mean_std, psnr_ssim


def _pair(rng, n=3, size=64):
    t = torch.from_numpy(rng.random((n, 1, size, size)))
    return (t + 0.05 * torch.from_numpy(rng.standard_normal(t.shape))).clamp(0, 1), t


def test_against_scikit_image(rng):
    pred, target = _pair(rng)
    psnr, ssim = psnr_ssim(pred, target, scale=2, spec=MetricSpec("paper", border=0))
    for i in range(len(pred)):
        p, t = pred[i, 0].numpy(), target[i, 0].numpy()
        assert psnr[i] == pytest.approx(peak_signal_noise_ratio(t, p, data_range=1), abs=1e-3)
        ref = structural_similarity(t, p, data_range=1, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False)
        assert ssim[i] == pytest.approx(ref, abs=1e-4)


def test_range01_maps_hr_range_and_crops_border(rng):
    pred, target = _pair(rng, n=1)
    z_target, z_pred = target * 4 - 2, pred * 4 - 2  # same images in other units
    a = psnr_ssim(pred, target, 2, MetricSpec("range01"), z_range=torch.tensor([[0.0, 1.0]]))
    b = psnr_ssim(z_pred, z_target, 2, MetricSpec("range01"), z_range=torch.tensor([[-2.0, 2.0]]))
    assert torch.allclose(a[0], b[0], atol=1e-4) and torch.allclose(a[1], b[1], atol=1e-5)
    # an error confined to the border is ignored
    spoiled = target.clone()
    spoiled[..., :2, :] = 0
    psnr, _ = psnr_ssim(spoiled, target, 2, MetricSpec("range01"))
    assert torch.isinf(psnr).all() or psnr.min() > 100


def test_worse_prediction_scores_lower(rng):
    _, target = _pair(rng)
    good = target + 0.01
    bad = target + 0.1
    assert (psnr_ssim(good, target, 2)[0] > psnr_ssim(bad, target, 2)[0]).all()


def test_mean_std_population():
    assert mean_std([1.0, 3.0]) == (2.0, 1.0)
    assert mean_std([5.0]) == (5.0, 0.0)


def test_unknown_convention():
    with pytest.raises(ValueError, match="convention"):
        MetricSpec("matlab")
    assert np.isfinite(1.0)


def test_scale_metrics_rows_are_psnr_ssim_once_per_image():
    """ScaleMetrics keeps one row per image index (a padded distributed sampler repeats one) in index order."""
    from afm_sr.metrics import ScaleMetrics

    gen = torch.Generator().manual_seed(0)
    hr = torch.rand(3, 1, 32, 32, generator=gen)
    pred, bicubic = hr + 0.05 * torch.rand(hr.shape, generator=gen), hr + 0.1 * torch.rand(hr.shape, generator=gen)
    metric = ScaleMetrics(2)
    metric.update(pred[2:], bicubic[2:], hr[2:], torch.tensor([2]))
    metric.update(pred[:2], bicubic[:2], hr[:2], torch.tensor([0, 1]))
    metric.update(pred[2:], bicubic[2:], hr[2:], torch.tensor([2]))  # the sampler's padding
    rows = metric.compute()
    psnr, ssim = psnr_ssim(pred, hr, 2)
    bpsnr, bssim = psnr_ssim(bicubic, hr, 2)
    assert rows["image"].tolist() == [0, 1, 2]
    for name, want in (("psnr", psnr), ("ssim", ssim), ("bicubic_psnr", bpsnr), ("bicubic_ssim", bssim)):
        assert torch.allclose(rows[name], want)
