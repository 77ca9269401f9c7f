"""Super-resolution of whole images of any size in overlapping tiles, equal to the untiled result.

The low-resolution image is cut into overlapping tiles; each tile runs through the network on its own, in
batches, so memory is bounded by the tile size, not the image size. Near an internal tile edge the tile's
result is wrong: the network sees ``net.receptive_radius(s)`` output pixels far (its convolutions and any
bicubic inside it), and the bicubic the residual is added to reaches 2 LR pixels (2 s HR pixels), all of
which see the tile's padding instead of the neighbouring image. So each tile's blending weight is 0
within ``exact_margin`` HR pixels of an internal edge and ramps linearly to 1 across the rest of the overlap;
the weights of one axis are normalized to sum to 1 and the 2-D weight is their outer product. The blend therefore only
mixes exact values, and the tiled image equals the untiled one up to float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from afm_sr.degrade import imresize
from afm_sr.errors import InputError
from afm_sr.models import SRNet

#: ``progress(done, total)`` is called after each batch of tiles.
Progress = Callable[[int, int], None]


def exact_margin(net: SRNet, scale: int) -> int:
    """HR pixels next to an internal tile edge that differ from the untiled result (network and bicubic reach)."""
    return max(net.receptive_radius(scale), 2 * scale)


#: Default output tile side: at least this, and twice the smallest tile the margins allow (so a network that
#: sees far, such as MultiScaleResNet at x8, does not spend most of each tile on its overlap).
AUTO_TILE_MIN = 512


def min_tile(margin: int, scale: int) -> int:
    """The smallest output tile side that leaves an exact core between two overlaps of ``margin`` px."""
    return (2 * math.ceil(2 * margin / scale) + 1) * scale


def resolve_tile(tile: int | str | None, margin: int, scale: int) -> int | None:
    """Output pixels per tile side: ``"auto"`` -> max(512, 2 x ``min_tile``), an int as given, None as is."""
    if tile == "auto":
        return max(AUTO_TILE_MIN, 2 * min_tile(margin, scale))
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 1):
        raise InputError(f"tile must be a positive number of output pixels, 'auto' or None, got {tile!r}")
    return tile


def plan_axis(length: int, tile: int | None, scale: int, margin: int) -> list[tuple[int, np.ndarray]]:
    """LR start of each tile along one axis and its normalized HR blending weights.

    Parameters
    ----------
    length : int
        LR pixels along the axis.
    tile : int, optional
        LR pixels per tile (None or >= length: one tile).
    scale : int
        The scale factor (HR pixels per LR pixel).
    margin : int
        HR pixels at an internal edge whose values must not be used (``exact_margin``).
    """
    if tile is None or tile >= length:
        return [(0, np.ones(length * scale))]
    overlap = math.ceil(2 * margin / scale)  # LR pixels, so that 2 * margin HR pixels are shared
    if tile < 2 * overlap + 1:
        raise InputError(f"tile of {tile * scale} px is too small for this model at x{scale}: use at least "
                         f"{min_tile(margin, scale)} px (each tile loses {margin} px at its edges)")
    starts = [*range(0, length - tile, tile - overlap), length - tile]
    ramp_len = overlap * scale - 2 * margin + 1
    d = np.arange(tile * scale, dtype=np.float64)
    rising = np.clip((d - margin + 1) / ramp_len, 0.0, 1.0)
    weights = []
    for start in starts:
        w = np.ones(tile * scale)
        if start > 0:
            w *= rising
        if start + tile < length:
            w *= rising[::-1]
        weights.append(w)
    total = np.zeros(length * scale)
    for start, w in zip(starts, weights, strict=True):
        total[start * scale:(start + tile) * scale] += w
    return [(start, w / total[start * scale:(start + tile) * scale]) for start, w in zip(starts, weights, strict=True)]


@torch.inference_mode()
def tiled_sr(net: SRNet, lr_net: np.ndarray, lr_base: np.ndarray, scale: int, gain: float,
             tile: int | str | None = "auto", batch: int = 4, device: torch.device | None = None,
             dtype: torch.dtype = torch.float32, progress: Progress | None = None) -> np.ndarray:
    """``bicubic(lr_base) + gain * net.residual(lr_net, scale)`` at ``scale`` times the size, tile by tile.

    Parameters
    ----------
    net : afm_sr.models.SRNet
        The network, already on ``device`` in ``dtype``.
    lr_net : numpy.ndarray
        The network's LR input (clipped and z-scored), 2-D float32.
    lr_base : numpy.ndarray
        The LR image whose bicubic upscaling the residual is added to (float64, same shape).
    scale : int
        Scale factor; the result has ``scale`` times as many pixels per side.
    gain : float
        Factor applied to the residual (the normalization's std, to get back to meters).
    tile : int, "auto" or None
        Output pixels per tile side (``"auto"``: ``resolve_tile``; None: the whole image at once).
    batch : int
        Tiles per forward pass.
    device : torch.device, optional
        Where ``net`` runs (default CPU).
    dtype : torch.dtype
        Precision of ``net``'s input.
    progress : callable, optional
        Called as ``progress(done, total)`` after each batch.
    """
    device = device or torch.device("cpu")
    ny, nx = lr_net.shape
    margin = exact_margin(net, scale)
    tile = resolve_tile(tile, margin, scale)
    tile_lr = None if tile is None else max(1, tile // scale)
    rows = plan_axis(ny, tile_lr, scale, margin)
    cols = plan_axis(nx, tile_lr, scale, margin)
    th, tw = min(ny, tile_lr or ny), min(nx, tile_lr or nx)
    tiles = [(y0, wy, x0, wx) for y0, wy in rows for x0, wx in cols]
    out = np.zeros((ny * scale, nx * scale))
    for first in range(0, len(tiles), batch):
        group = tiles[first:first + batch]
        net_in = torch.stack([torch.from_numpy(np.ascontiguousarray(lr_net[y0:y0 + th, x0:x0 + tw]))
                              for y0, _, x0, _ in group])[:, None].to(device=device, dtype=dtype)
        residual = net.residual(net_in.contiguous(memory_format=torch.channels_last), scale).float().cpu().numpy()[:, 0]
        for (y0, wy, x0, wx), res in zip(group, residual, strict=True):
            base = imresize(torch.from_numpy(np.ascontiguousarray(lr_base[y0:y0 + th, x0:x0 + tw])), scale=scale)
            ys, xs = slice(y0 * scale, (y0 + th) * scale), slice(x0 * scale, (x0 + tw) * scale)
            out[ys, xs] += (base.numpy() + gain * res) * (wy[:, None] * wx[None, :])
        if progress is not None:
            progress(min(first + batch, len(tiles)), len(tiles))
    return out
