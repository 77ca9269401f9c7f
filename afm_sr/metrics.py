"""PSNR/SSIM per image on a stated range, for model and bicubic alike (torchmetrics inside).

Two conventions (see DESIGN.md and the README):

- ``range01``: the HR image's clipped range [lo, hi] is mapped to [0, 1] for HR and prediction, the
  prediction is clamped to [0, 1] (as an 8-bit image would be), data_range = 1. Comparable across tools.
- ``paper``: the z-scored images as they are, data_range = 1 (MATLAB ``psnr``/``ssim`` defaults for double
  images, which the paper's absolute values are consistent with).

In both, a border of ``scale`` pixels is cropped before measuring, and SSIM uses the usual 11x11
Gaussian window (sigma 1.5, K1 = 0.01, K2 = 0.03), averaged over
the windows that lie wholly inside the image, as scikit-image does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torchmetrics import Metric
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
from torchmetrics.utilities import dim_zero_cat

CONVENTIONS = ("range01", "paper")
SSIM_WINDOW = 11


@dataclass(frozen=True)
class MetricSpec:
    """How images are compared: convention and border crop (``None`` = crop ``scale`` pixels)."""

    convention: str = "range01"
    border: int | None = None

    def __post_init__(self) -> None:
        if self.convention not in CONVENTIONS:
            raise ValueError(f"metric convention must be one of {CONVENTIONS}, got {self.convention!r}")

    def crop(self, scale: int) -> int:
        """Pixels cropped from each side for this scale."""
        return scale if self.border is None else self.border


def _prepare(pred: torch.Tensor, target: torch.Tensor, z_range: torch.Tensor | None, spec: MetricSpec,
             scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop the border and map both images to the convention's range; shapes (N, 1, H, W)."""
    b = spec.crop(scale)
    if b > 0:
        pred, target = pred[..., b:-b, b:-b], target[..., b:-b, b:-b]
    pred, target = pred.double(), target.double()
    if spec.convention == "range01":
        if z_range is None:
            lo = target.amin(dim=(-2, -1), keepdim=True)
            hi = target.amax(dim=(-2, -1), keepdim=True)
        else:
            lo = z_range[..., 0].double().reshape(-1, 1, 1, 1)
            hi = z_range[..., 1].double().reshape(-1, 1, 1, 1)
        span = (hi - lo).clamp_min(1e-12)
        pred = ((pred - lo) / span).clamp(0, 1)
        target = ((target - lo) / span).clamp(0, 1)
    return pred, target


def psnr_ssim(pred: torch.Tensor, target: torch.Tensor, scale: int, spec: MetricSpec = MetricSpec(),
              z_range: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image PSNR (dB) and SSIM of ``pred`` vs ``target`` (N, 1, H, W), each a tensor of shape (N,).

    ``z_range`` (N, 2) gives each HR image's clipped range in the same units as the images; without it
    the target's own min/max is used (identical for HR images that went through ``preprocess``).
    """
    p, t = _prepare(pred, target, z_range, spec, scale)
    psnr = peak_signal_noise_ratio(p, t, data_range=1.0, reduction="none", dim=(1, 2, 3))
    _, ssim_map = structural_similarity_index_measure(p, t, data_range=1.0, reduction="none", gaussian_kernel=True,
                                                      sigma=1.5, kernel_size=11, return_full_image=True)
    half = SSIM_WINDOW // 2  # like scikit-image and MATLAB: mean over windows that lie inside the image
    ssim = ssim_map[..., half:-half, half:-half].mean(dim=(1, 2, 3))
    return psnr.float(), ssim.float()


def mean_std(values: torch.Tensor | list[float]) -> tuple[float, float]:
    """Mean and (population) standard deviation over images, as the paper's Table 1 reports."""
    v = torch.as_tensor(values, dtype=torch.float64)
    return float(v.mean()), float(v.std(unbiased=False)) if v.numel() > 1 else 0.0


class ScaleMetrics(Metric):
    """Per-image PSNR/SSIM of a model and of bicubic at one scale, as rows that gather across processes.

    ``update`` measures a batch with :func:`psnr_ssim`; ``compute`` returns the rows of every process
    (``dist_reduce_fx="cat"``), one per image: ``image`` is the image's index in the evaluated dataset
    (strings do not sync; the caller names it), duplicates from a padded distributed sampler dropped.
    """

    full_state_update = False
    ROWS = ("image", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim")

    def __init__(self, scale: int, spec: MetricSpec = MetricSpec(), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale, self.spec = int(scale), spec
        for name in self.ROWS:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, pred: torch.Tensor, bicubic: torch.Tensor, target: torch.Tensor, image: torch.Tensor,
               z_range: torch.Tensor | None = None) -> None:
        """Measure model output ``pred`` and ``bicubic`` against ``target`` (N, 1, H, W) for images ``image`` (N,)."""
        psnr, ssim = psnr_ssim(pred, target, self.scale, self.spec, z_range)
        bpsnr, bssim = psnr_ssim(bicubic, target, self.scale, self.spec, z_range)
        for name, value in zip(self.ROWS, (image.long(), psnr, ssim, bpsnr, bssim), strict=True):
            getattr(self, name).append(value.reshape(-1))

    def compute(self) -> dict[str, torch.Tensor]:
        """Every image's row once, in image order: ``image`` (index) and the four metrics, each of shape (n,)."""
        rows = {name: dim_zero_cat(getattr(self, name)) for name in self.ROWS}
        image, order = torch.sort(rows["image"], stable=True)
        first = torch.ones_like(image, dtype=torch.bool)
        first[1:] = image[1:] != image[:-1]
        return {name: value[order][first] for name, value in rows.items()}
