"""VDSR (Kim et al., CVPR 2016): a plain conv stack that predicts the residual to the bicubic input."""

from __future__ import annotations

import torch
from torch import nn

from afm_sr.errors import ConfigError


class VDSR(nn.Module):
    """``depth`` conv layers (3x3, ``width`` channels, ReLU between), output = input + residual.

    The input is the bicubic-upscaled LR image; the network only learns the missing high frequencies
    (global residual learning), which is what lets a 20-layer plain stack train at a high learning rate.
    """

    def __init__(self, depth: int = 20, width: int = 64, channels: int = 1) -> None:
        super().__init__()
        if depth < 2:
            raise ConfigError(f"model.depth must be >= 2 (first and last conv), got {depth}")
        if width < 1 or channels < 1:
            raise ConfigError(f"model.width and model.channels must be >= 1, got {width}, {channels}")
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Bicubic-upscaled LR (N, C, H, W) -> restored HR of the same shape."""
        return x + self.body(x)
