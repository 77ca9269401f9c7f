"""VDSR (Kim et al., CVPR 2016): a plain conv stack on the bicubic-upscaled image that predicts its residual."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from afm_sr.degrade import imresize
from afm_sr.models.base import SRNet


class VDSR(SRNet):
    """``depth`` conv layers (3x3, ``width`` channels, ReLU between) on ``imresize(lr, s)``, output = that + residual.

    The network only learns the missing high frequencies (global residual learning), which is what lets a
    20-layer plain stack train at a high learning rate. Every layer runs at the output resolution, so one
    model serves any scale, at a cost per output pixel that does not fall with the scale.
    """

    LIMITS: ClassVar = {"depth": (2, 128), "width": (1, 1024), "channels": (1, 4)}

    def __init__(self, depth: int = 20, width: int = 64, channels: int = 1) -> None:
        super().__init__(depth=depth, width=width, channels=channels)
        self.depth, self.width, self.channels = depth, width, channels
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He (Kaiming) normal init for ReLU nets as in VDSR, zero biases."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def residual(self, lr: torch.Tensor, scale: int, upsampled: torch.Tensor | None = None) -> torch.Tensor:
        """``body(imresize(lr, s))``: the conv stack on the bicubic upscaling (``upsampled`` where given)."""
        return self.body(imresize(lr, scale=int(scale)) if upsampled is None else upsampled)

    def receptive_radius(self, scale: int) -> int:
        """One pixel per 3x3 conv, plus the bicubic kernel's 2 LR pixels (2 s output pixels)."""
        return self.depth + 2 * int(scale)
