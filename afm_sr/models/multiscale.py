"""A multi-scale residual network on the input grid (after MDSR, Lim et al. 2017): one body, a tail per scale.

Every body layer runs on the low-resolution grid, so an output pixel at x8 costs 1/64 of what a layer at the
output resolution costs, and 2 x ``blocks`` + 2 convolutions give a receptive field of tens of input pixels:
the structures that decide an x8 output (grains, steps, fibrils) are seen whole. Each scale has its own
pixel-shuffle tail (x2 stages); the output is the bicubic upscaling plus the predicted residual, and the last
conv of each tail starts at zero, so an untrained network is exactly bicubic.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from afm_sr.choices import SUPPORTED_SCALES
from afm_sr.errors import ConfigError
from afm_sr.models.base import SRNet


class ResBlock(nn.Module):
    """conv-ReLU-conv with an identity skip (no batch norm: heights are not an ensemble statistic)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """X + conv2(relu(conv1(x)))."""
        return x + self.conv2(torch.relu(self.conv1(x)))


def _tail(width: int, tail_width: int, scale: int, channels: int) -> nn.Sequential:
    """log2(scale) stages of conv -> pixel shuffle x2 -> ReLU, then a zero-initialized conv to ``channels``."""
    layers: list[nn.Module] = []
    c = width
    for _ in range(int(math.log2(scale))):
        layers += [nn.Conv2d(c, 4 * tail_width, 3, padding=1), nn.PixelShuffle(2), nn.ReLU(inplace=True)]
        c = tail_width
    last = nn.Conv2d(c, channels, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


class MultiScaleResNet(SRNet):
    """MDSR-like: a shared body on the LR grid, a pixel-shuffle tail per scale, output = bicubic + residual.

    Head conv, ``blocks`` residual blocks of ``width`` channels and a body conv (global skip) on the LR grid; one
    tail of ``tail_width`` channels per scale in ``scales``.
    """

    LIMITS: ClassVar = {"blocks": (0, 64), "width": (1, 512), "tail_width": (1, 512), "channels": (1, 4)}

    def __init__(self, blocks: int = 12, width: int = 64, tail_width: int = 32, scales: tuple[int, ...] = (2, 4, 8),
                 channels: int = 1) -> None:
        try:
            scales = tuple(sorted({int(s) for s in scales}))
        except (TypeError, ValueError, OverflowError) as exc:
            raise ConfigError(f"model.scales must be a list of integers, got {scales!r}") from exc
        if not scales or any(s not in SUPPORTED_SCALES for s in scales):
            raise ConfigError(f"model.scales {list(scales)}: each must be one of {list(SUPPORTED_SCALES)}")
        super().__init__(blocks=blocks, width=width, tail_width=tail_width, scales=list(scales), channels=channels)
        self.blocks, self.scales, self.feature_channels = blocks, scales, width
        self.head = nn.Conv2d(channels, width, 3, padding=1)
        self.body = nn.Sequential(*(ResBlock(width) for _ in range(blocks)), nn.Conv2d(width, width, 3, padding=1))
        self.tails = nn.ModuleDict({str(s): _tail(width, tail_width, s, channels) for s in scales})

    def residual(self, lr: torch.Tensor, scale: int, upsampled: torch.Tensor | None = None) -> torch.Tensor:
        """tail_s(head + body(head)): LR-grid features shuffled up to s times the size (``upsampled`` unused)."""
        return self.upsample(self.features(lr), scale)

    def features(self, lr: torch.Tensor) -> torch.Tensor:
        """The head conv plus the body on it (the global skip), on the LR grid."""
        features = self.head(lr)
        return features + self.body(features)

    def upsample(self, features: torch.Tensor, scale: int) -> torch.Tensor:
        """The scale's pixel-shuffle tail on the features."""
        key = str(int(scale))
        if key not in self.tails:
            raise ConfigError(f"this network has tails for scales {list(self.scales)}, not x{scale}")
        return self.tails[key](features)

    def feature_radius(self) -> int:
        """One LR pixel per conv: the head, two per block, the body's last."""
        return 2 + 2 * self.blocks

    def upsample_radius(self, scale: int) -> int:
        """One pixel of its own grid per tail conv: stage k runs at 2^k x the LR grid, the last conv at the output's."""
        s = int(scale)
        return sum(s // 2**k for k in range(int(math.log2(s)))) + 1

    def receptive_radius(self, scale: int) -> int:
        """The features' reach in output pixels, the tail's, and bicubic's 2 LR pixels."""
        s = int(scale)
        return self.feature_radius() * s + self.upsample_radius(s) + 2 * s
