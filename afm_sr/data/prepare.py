"""Turn height maps into training tensors: normalize, crop to the scales, degrade once per scale."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from afm_sr.degrade import Degradation, degrade, modcrop
from afm_sr.errors import InputError
from afm_sr.io import HeightMap
from afm_sr.io.heightmap import scan_size
from afm_sr.preprocess import Normalization, normalize


@dataclass
class Prepared:
    """One HR image in network units with its degraded inputs per scale, and what turns it back into meters.

    ``stats`` maps heights in meters to network units and back; ``pixel_size`` (dx, dy) in meters is the HR
    map's, so ``scan_size`` is the real area the (cropped) HR image covers.
    """

    hr: torch.Tensor
    inputs: dict[int, torch.Tensor]
    lows: dict[int, torch.Tensor]
    z_range: tuple[float, float]
    material: str
    name: str
    stats: Normalization
    pixel_size: tuple[float, float]

    @property
    def scan_size(self) -> tuple[float, float]:
        """(width, height) in meters of the HR image as cropped."""
        return scan_size(self.hr.shape, self.pixel_size)


def lcm(values: Sequence[int]) -> int:
    """Least common multiple, the crop multiple that aligns HR with every scale's LR grid."""
    out = 1
    for v in values:
        out = out * int(v) // math.gcd(out, int(v))
    return out


def prepare(hm: HeightMap, scales: Sequence[int], degradation: Degradation, seed: int,
            clip_percentiles: tuple[float, float] = (2.5, 97.5), material: str = "", name: str = "") -> Prepared:
    """Normalize ``hm`` (clip + z-score), crop it to a multiple of every scale, degrade it per scale.

    The network input is always the bicubic upscaling of the degradation's LR image.

    The degradation's randomness is seeded by ``seed`` and the scale, so a split always sees the same
    inputs. Raises InputError (without the file's name, which the caller adds) for a map smaller than two LR
    pixels at the largest scale, one that cannot be normalized, or one whose prepared arrays are not finite.
    """
    least = 2 * lcm(scales)
    if min(hm.data.shape) < least:
        raise InputError(f"{hm.data.shape[0]}x{hm.data.shape[1]} px is too small: at least {least}x{least} px "
                         f"give 2 LR pixels at x{max(scales)}")
    z, stats = normalize(hm.data, clip_percentiles)
    hr = modcrop(torch.from_numpy(z.astype(np.float32)), lcm(scales))
    inputs, lows = {}, {}
    for s in map(int, scales):
        gen = torch.Generator().manual_seed(int(seed) * 1009 + s)
        low, up = degrade(degradation, hr, s, gen)
        lows[s], inputs[s] = low.float().contiguous(), up.float().contiguous()
    if not all(bool(torch.isfinite(t).all()) for t in (hr, *inputs.values(), *lows.values())):
        raise InputError("its prepared (normalized, degraded) arrays hold NaN or Inf")
    return Prepared(hr.contiguous(), inputs, lows, stats.z_range, material, name, stats, hm.pixel_size)
