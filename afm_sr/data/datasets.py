"""Datasets over prepared images: random augmented patches for training, whole images for evaluation."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from afm_sr.data.prepare import Prepared


def _mix(draw: int, index: int) -> int:
    """Combine a random draw with the sample index (splitmix64 finalizer): distinct indices, distinct patches."""
    z = (draw ^ (index * 0x9E3779B97F4A7C15)) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) >> 2


class PatchDataset(Dataset):
    """``length`` random patches per epoch; each draws an image, a scale, a position and a dihedral flip.

    Randomness comes from torch's RNG, which Lightning seeds and the DataLoader re-seeds per worker and
    epoch, so every epoch sees new patches yet a seeded run is reproducible; the sample index is mixed
    in, so DDP ranks (same seed, disjoint indices) draw different patches. Images smaller than the
    patch are skipped for training.
    """

    def __init__(self, images: Sequence[Prepared], scales: Sequence[int], patch_size: int = 41,
                 length: int = 6400, augment: bool = True) -> None:
        self.images = [im for im in images if min(im.hr.shape) >= patch_size]
        if not self.images:
            raise ValueError(f"no training image is at least {patch_size}x{patch_size} px")
        self.scales = [int(s) for s in scales]
        self.patch, self.length, self.augment = patch_size, length, augment

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """A dict with ``input``/``target`` (1, P, P) and ``scale`` (int64 scalar)."""
        r = _mix(torch.randint(0, 2**62, (1,)).item(), index)
        im = self.images[r % len(self.images)]
        r //= len(self.images)
        scale = self.scales[r % len(self.scales)]
        r //= len(self.scales)
        h, w = im.hr.shape
        top = r % (h - self.patch + 1)
        r //= h - self.patch + 1
        left = r % (w - self.patch + 1)
        r //= w - self.patch + 1
        sl = (slice(top, top + self.patch), slice(left, left + self.patch))
        pair = torch.stack([im.inputs[scale][sl], im.hr[sl]])
        if self.augment:
            pair = torch.rot90(pair, k=r % 4, dims=(1, 2))
            if (r // 4) % 2:
                pair = pair.flip(2)
        return {"input": pair[0:1].contiguous(), "target": pair[1:2].contiguous(),
                "scale": torch.tensor(scale)}


class ImageDataset(Dataset):
    """Every (image, scale) pair as a whole image, for validation and test (batch size 1)."""

    def __init__(self, images: Sequence[Prepared], scales: Sequence[int]) -> None:
        self.images = list(images)
        self.items = [(i, int(s)) for i in range(len(self.images)) for s in scales]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, object]:
        """Whole image: ``input``/``target`` (1, H, W), ``low`` (1, H/s, W/s), scale, z_range, material, name.

        ``meters`` = (mean, std, scan width) in meters turns network units back into a height map of the
        real scan size (NaN where the image carries no statistics).
        """
        i, scale = self.items[index]
        im = self.images[i]
        mean, std = (im.stats.mean, im.stats.std) if im.stats is not None else (math.nan, math.nan)
        meters = torch.tensor([mean, std, im.hr.shape[1] * im.pixel_size[0]], dtype=torch.float64)
        return {"input": im.inputs[scale][None], "target": im.hr[None], "low": im.lows[scale][None],
                "scale": torch.tensor(scale), "z_range": torch.tensor(im.z_range, dtype=torch.float32),
                "meters": meters, "material": im.material, "name": im.name}
