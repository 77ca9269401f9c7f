"""Datasets over prepared images: random augmented patches for training, whole images for evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, TypedDict

import torch
from torch.utils.data import Dataset

from afm_sr.data.prepare import Prepared
from afm_sr.degrade import Degradation, imresize
from afm_sr.preprocess import Normalization

#: LR pixels of context around a crop degraded during training, so kernels and the tip see real neighbours.
MARGIN = 4


class PatchBatch(TypedDict):
    """A training batch of patches at one scale, in network units.

    ``low`` (B, 1, n, n), ``input`` (its bicubic upscaling) and ``target`` (B, 1, s n, s n), ``scale`` (0-d int64).
    """

    low: torch.Tensor
    input: torch.Tensor
    target: torch.Tensor
    scale: torch.Tensor


class Units(NamedTuple):
    """What turns each image of a batch from network units back into heights in meters over its real scan.

    Its ``Normalization`` (``lo``, ``hi``, ``mean``, ``std``; meters) and ``scan_size`` (width, height; meters) as
    float64 tensors whose first dimension is the batch, so ``default_collate`` stacks them and Lightning moves them.
    """

    lo: torch.Tensor
    hi: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    scan_size: torch.Tensor

    @classmethod
    def of(cls, image: Prepared) -> Units:
        """The units of one prepared image (one item: 0-d statistics and a (2,) scan size)."""
        stats = image.stats
        return cls(*(torch.tensor(v, dtype=torch.float64)
                     for v in (stats.lo, stats.hi, stats.mean, stats.std, image.scan_size)))

    def normalization(self, i: int = 0) -> Normalization:
        """Image ``i``'s statistics: ``invert`` them to get meters (the one inverse, ``afm_sr.preprocess``)."""
        return Normalization(*(float(v[i]) for v in (self.lo, self.hi, self.mean, self.std)))


class ImageBatch(TypedDict):
    """Whole images at one scale for validation and test, network units; ``default_collate`` stacks items into it.

    ``input`` (B, 1, H, W) is the bicubic upscaling of ``low`` (B, 1, H/s, W/s), ``target`` the HR image; ``scale``
    (B,) int64; ``z_range`` (B, 2) the HR's clipped range (what the metrics map to [0, 1]); ``index`` (B,) the
    image's place in the dataset's ``images`` (rows gathered across processes name it by that); ``units`` turns
    them back into meters over the real scan size.
    """

    input: torch.Tensor
    target: torch.Tensor
    low: torch.Tensor
    scale: torch.Tensor
    z_range: torch.Tensor
    index: torch.Tensor
    units: Units


def _mix(draw: int, index: int) -> int:
    """Combine a random draw with the sample index (splitmix64 finalizer): distinct indices, distinct patches."""
    z = (draw ^ (index * 0x9E3779B97F4A7C15)) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) >> 2


class PatchDataset(Dataset):
    """``length`` batches of random patches per epoch; each batch is one scale, its patches drawn independently.

    A batch holds ``batch_size`` patches of ``patch_size // s`` LR pixels (or ``lr_patch`` at every scale, which
    gives a network on the input grid the same context at x8 as at x2) and ``s`` times that in HR, at one
    scale ``s``; the scales cycle from batch to batch, so a network whose layers depend on the scale (one tail
    per scale) sees whole batches of one scale, and a network on the input grid gets aligned LR/HR crops.
    Each patch draws an image, a position and a dihedral flip. Randomness comes from torch's RNG, which
    Lightning seeds, so every epoch sees new patches yet a seeded run is reproducible; the batch index is mixed
    in, so DDP ranks (same seed, disjoint indices) draw different patches. Images smaller than a scale's HR
    patch are skipped at that scale. With ``degradation``, every patch is degraded afresh (a new acquisition
    drawn per patch, from a window of ``MARGIN`` LR pixels around it) instead of cut from the image's one
    prepared LR image: a randomized family then shows the network a new instrument every time.
    """

    def __init__(self, images: Sequence[Prepared], scales: Sequence[int], patch_size: int = 41,
                 length: int = 100, batch_size: int = 64, augment: bool = True, lr_patch: int | None = None,
                 degradation: Degradation | None = None) -> None:
        self.scales = [int(s) for s in scales]
        self.lr_size = {s: int(lr_patch) if lr_patch else patch_size // s for s in self.scales}
        self.images = {s: [im for im in images if min(im.hr.shape) >= n * s] for s, n in self.lr_size.items()}
        empty = [s for s, ims in self.images.items() if not ims]
        if empty or min(self.lr_size.values()) < 1:
            raise ValueError(f"no training image is large enough for the patches at x{empty}: "
                             f"{ {s: n * s for s, n in self.lr_size.items()} } px")
        self.length, self.batch_size, self.augment = length, batch_size, augment
        self.degradation = degradation

    def _fresh(self, hr: torch.Tensor, scale: int, top: int, left: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(LR, bicubic input) of the ``n``-px LR crop at (top, left), degraded now with its margin of context."""
        h, w = (d // scale for d in hr.shape)
        t0, l0 = max(0, top - MARGIN), max(0, left - MARGIN)
        t1, l1 = min(h, top + n + MARGIN), min(w, left + n + MARGIN)
        window = hr[t0 * scale:t1 * scale, l0 * scale:l1 * scale]
        lr = self.degradation.downscale(window, scale)
        up = imresize(lr, size=tuple(window.shape))
        y, x = top - t0, left - l0
        return lr[y:y + n, x:x + n], up[y * scale:(y + n) * scale, x * scale:(x + n) * scale]

    def __len__(self) -> int:
        return self.length

    def _patch(self, r: int, scale: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(LR, bicubic input, HR) crops of one image at ``scale``, from the random number ``r``."""
        images = self.images[scale]
        im = images[r % len(images)]
        r //= len(images)
        n = self.lr_size[scale]
        h, w = (d // scale for d in im.hr.shape)
        top = r % (h - n + 1)
        r //= h - n + 1
        left = r % (w - n + 1)
        r //= w - n + 1
        hr_sl = (slice(top * scale, (top + n) * scale), slice(left * scale, (left + n) * scale))
        if self.degradation is None:
            low, up = im.lows[scale][top:top + n, left:left + n], im.inputs[scale][hr_sl]
        else:
            low, up = self._fresh(im.hr, scale, top, left, n)
        high = torch.stack([up, im.hr[hr_sl]])
        if self.augment:
            k, flip = r % 4, (r // 4) % 2
            low, high = torch.rot90(low, k, dims=(0, 1)), torch.rot90(high, k, dims=(1, 2))
            if flip:
                low, high = low.flip(1), high.flip(2)
        return low, high[0], high[1]

    def __getitem__(self, index: int) -> PatchBatch:
        """The batch ``index``: its scale is the ``index``-th of the cycle, its patches drawn at random."""
        scale = self.scales[index % len(self.scales)]
        draw = torch.randint(0, 2**62, (1,)).item()
        crops = [self._patch(_mix(draw, index * self.batch_size + i), scale) for i in range(self.batch_size)]
        low, up, hr = (torch.stack([c[j] for c in crops])[:, None].contiguous() for j in range(3))
        return PatchBatch(low=low, input=up, target=hr, scale=torch.tensor(scale))


class ImageDataset(Dataset):
    """Every (image, scale) pair as a whole image, for validation and test (batch size 1)."""

    def __init__(self, images: Sequence[Prepared], scales: Sequence[int]) -> None:
        self.images = list(images)
        self.items = [(i, int(s)) for i in range(len(self.images)) for s in scales]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> ImageBatch:
        """One (image, scale) pair as an item of an ``ImageBatch`` (no batch dimension yet)."""
        i, scale = self.items[index]
        im = self.images[i]
        return ImageBatch(input=im.inputs[scale][None], target=im.hr[None], low=im.lows[scale][None],
                          scale=torch.tensor(scale), z_range=torch.tensor(im.z_range, dtype=torch.float32),
                          index=torch.tensor(i), units=Units.of(im))
