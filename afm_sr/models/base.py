"""The contract every network in ``afm_sr.models`` meets, so training, tiling and export never reach inside one.

- ``net(lr, scale)``: the z-scored low-resolution image (N, 1, h, w) and the integer scale in, the restored
  image (N, 1, scale*h, scale*w) out; it equals ``imresize(lr, scale) + net.residual(lr, scale)``.
- ``net.residual(lr, scale)``: the detail added to the bicubic upscaling (computed directly, so a bf16 run does
  not lose it to the subtraction of two large numbers); ``enhance`` adds it to the bicubic of the unclipped heights.
- ``upsampled`` (optional, both calls): ``imresize(lr, scale)`` computed on a larger context, i.e. a crop of the
  whole image's bicubic when ``lr`` is a training crop. A network that works on the bicubic image (VDSR) then sees
  what it sees inside a whole image at test time, not the crop's border effects (2 LR pixels = most of a
  5 px crop at x8).
- ``net.receptive_radius(scale)``: how far (output pixels) an output pixel sees, which tiling uses as its margin.
- ``net.arch_kwargs``: the keyword arguments that rebuild it; checkpoints store them beside its ``_target_``.
- ``net.feature_channels`` (optional, 0 where absent): a network whose work splits into a stage on the LR grid and an
  upsampling stage has ``residual(lr, s) == upsample(features(lr), s)``, with ``feature_radius()`` (LR pixels) and
  ``upsample_radius(s)`` (output pixels) as their reaches. Tiling then runs the LR-grid stage over the whole image
  once (it needs about 1/s^2 of the memory per input pixel) and only the upsampling in strips, whose halos are a
  few pixels instead of the whole network's reach.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from afm_sr.degrade import imresize
from afm_sr.errors import ConfigError


class SRNet(nn.Module):
    """Base class of the architectures: bicubic + residual, a receptive radius, and bounded constructor arguments.

    ``LIMITS`` maps each integer argument to its allowed (min, max): weights files from strangers name these
    numbers, and a depth of 10^6 must be refused before anything is allocated.
    """

    LIMITS: ClassVar[Mapping[str, tuple[int, int]]] = {}
    #: Channels of ``features`` (0: the network has no LR-grid stage to run apart, e.g. VDSR on the bicubic grid).
    feature_channels: int = 0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.arch_kwargs: dict[str, Any] = self.check_kwargs(kwargs)

    @classmethod
    def check_kwargs(cls, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """``kwargs`` with every bounded integer checked (ConfigError naming the value and its range)."""
        out = dict(kwargs)
        for key, (low, high) in cls.LIMITS.items():
            value = out.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"model.{key} must be an integer in [{low}, {high}] for {cls.__name__}, "
                                  f"got {value!r}")
        return out

    def residual(self, lr: torch.Tensor, scale: int, upsampled: torch.Tensor | None = None) -> torch.Tensor:
        """The detail the network adds to ``imresize(lr, scale)``, shape (N, C, scale*h, scale*w)."""
        raise NotImplementedError

    def receptive_radius(self, scale: int) -> int:
        """Output pixels beyond which an input change cannot reach an output pixel (bicubic reach included)."""
        raise NotImplementedError

    def features(self, lr: torch.Tensor) -> torch.Tensor:
        """The LR-grid features (N, feature_channels, h, w) that ``upsample`` turns into the residual."""
        raise NotImplementedError

    def upsample(self, features: torch.Tensor, scale: int) -> torch.Tensor:
        """The residual at ``scale`` times the size from ``features``."""
        raise NotImplementedError

    def feature_radius(self) -> int:
        """LR pixels beyond which an input change cannot reach a feature."""
        raise NotImplementedError

    def upsample_radius(self, scale: int) -> int:
        """Output pixels beyond which a feature change cannot reach an output pixel of ``upsample``."""
        raise NotImplementedError

    def forward(self, lr: torch.Tensor, scale: int, upsampled: torch.Tensor | None = None) -> torch.Tensor:
        """Low-resolution (N, C, h, w) -> restored (N, C, scale*h, scale*w) = bicubic + residual."""
        up = imresize(lr, scale=int(scale)) if upsampled is None else upsampled
        return up + self.residual(lr, int(scale), up)
