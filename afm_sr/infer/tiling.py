"""Super-resolution of whole images of any size, in one pass where memory allows, else in exact tiles.

``bicubic(lr_base) + gain * net.residual(lr_net, s)`` at ``s`` times the size. The bicubic part is the whole
image's: per output block, two matrix products with the rows and columns of ``imresize``'s resampling matrices
(float32 on the network's device, of ``lr_base`` minus its mean, the mean added back in float64), so it needs no
tiles. The residual runs on the whole image when its activations fit the memory left (``"auto"``); otherwise the
image is cut into cores (full-width strips first, which share only two edges each) and each core's network input
is the core plus a halo of ``ceil(net.receptive_radius(s) / s) + 1`` LR pixels: an output pixel of the core then
sees exactly what it sees in the whole image, so only the core is kept, no blending is needed, and the tiled
result equals the untiled one up to float rounding. The only repeated work is the halos.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from afm_sr.degrade import bicubic_matrix
from afm_sr.errors import InputError
from afm_sr.io.budget import headroom
from afm_sr.models import SRNet

#: ``progress(done, total)`` is called after each batch of tiles.
Progress = Callable[[int, int], None]
#: The peak of a forward pass over the largest layer's input + output (measured on CPU with ru_maxrss for the
#: shipped network: 400 B per output pixel at x2 and 262 at x8 against 384 and 512 estimated).
PEAK_FACTOR = 2
#: LR side of the probe that measures a network's layer sizes.
PROBE_LR = 16


def exact_margin(net: SRNet, scale: int) -> int:
    """HR pixels next to a tile edge that the residual's receptive field reaches (what a halo must cover)."""
    return max(net.receptive_radius(scale), 2 * scale)


def halo(margin: int, scale: int) -> int:
    """LR pixels of context each tile reads beyond its core on an internal side."""
    return math.ceil(margin / scale) + 1


def min_tile(margin: int, scale: int) -> int:
    """The smallest output tile side that leaves a core of one LR pixel inside two halos."""
    return (2 * halo(margin, scale) + 1) * scale


def resolve_tile(tile: int | str | None, margin: int, scale: int) -> int | str | None:
    """``"auto"`` and None as they are, an int checked (InputError for anything else or a tile too small)."""
    if tile is None or tile == "auto":
        return tile
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise InputError(f"tile must be a positive number of output pixels, 'auto' or None, got {tile!r}")
    if tile // scale < 2 * halo(margin, scale) + 1:
        raise InputError(f"tile of {tile} px is too small for this model at x{scale}: use at least "
                         f"{min_tile(margin, scale)} px (each tile reads {halo(margin, scale)} LR px beyond its core)")
    return tile


#: Elements per output pixel, per (architecture, its kwargs, scale): copies of one network probe the same.
_PROBED: dict[tuple[type, str, int], float] = {}


def activation_bytes(net: SRNet, scale: int, dtype: torch.dtype | None = None) -> float:
    """Bytes per output pixel a forward pass of ``net`` at ``scale`` (in ``dtype``, default its own) holds at its peak.

    From a small probe run, once per architecture and scale.
    """
    key = (type(net), json.dumps(net.arch_kwargs, sort_keys=True), int(scale))
    if key not in _PROBED:
        _PROBED[key] = _probe(net, int(scale))
    return _PROBED[key] * (dtype or next(net.parameters()).dtype).itemsize


def _probe(net: SRNet, scale: int) -> float:
    """Elements per output pixel: PEAK_FACTOR x the largest leaf module's input + output."""
    sizes: list[int] = []

    def hook(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        """Record one leaf module's input plus output elements."""
        sizes.append(sum(t.numel() for t in inputs if isinstance(t, torch.Tensor)) + output.numel())

    leaves = [m for m in net.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    param = next(net.parameters())
    try:
        with torch.inference_mode():
            net.residual(torch.zeros(1, 1, PROBE_LR, PROBE_LR, device=param.device, dtype=param.dtype), scale)
    finally:
        for handle in handles:
            handle.remove()
    return PEAK_FACTOR * max(sizes, default=1) / (PROBE_LR * scale) ** 2


def largest_out_px(tiles: list[Tile], scale: int) -> int:
    """Output pixels of the largest region the network runs on (what its activations scale with)."""
    return max(t.read_px for t in tiles) * scale * scale


@dataclass(frozen=True)
class Tile:
    """A core (kept) and the region read for it (core plus halos, clipped to the image), in LR pixels."""

    core: tuple[slice, slice]
    read: tuple[slice, slice]

    @property
    def read_px(self) -> int:
        """LR pixels the network runs on for this tile."""
        return (self.read[0].stop - self.read[0].start) * (self.read[1].stop - self.read[1].start)


def _cores(length: int, core: int | None) -> list[tuple[int, int]]:
    """``length`` cut into near-equal pieces of at most ``core`` (one piece for None)."""
    pieces = 1 if core is None or core >= length else math.ceil(length / core)
    bounds = [round(i * length / pieces) for i in range(pieces + 1)]
    return list(itertools.pairwise(bounds))


def plan_tiles(net: SRNet, shape: tuple[int, int], scale: int, tile: int | str | None,
               px_bytes: float = 0.0, memory: int | None = None) -> list[Tile]:
    """The tiles of an LR image of ``shape`` for ``net`` (halos from ``exact_margin``).

    Parameters
    ----------
    net : afm_sr.models.SRNet
        The network (its receptive radius sets the halos).
    shape : (int, int)
        LR rows and columns.
    scale : int
        The scale factor.
    tile : int, "auto" or None
        Output pixels per tile side (read region, halos included); None: the whole image; ``"auto"``: the whole
        image if ``px_bytes`` per output pixel fit ``memory``, else the tallest full-width strips that fit, else the
        largest square tiles that fit, else the smallest tiles (which the caller's memory check then refuses).
    px_bytes : float
        Activation bytes per output pixel of the network (``activation_bytes``), for ``"auto"``.
    memory : int, optional
        Bytes the activations may take, for ``"auto"`` (None: no bound).
    """
    ny, nx = shape
    margin = exact_margin(net, scale)
    tile = resolve_tile(tile, margin, scale)
    h = halo(margin, scale)
    if tile == "auto":
        fits = int(memory // max(px_bytes * scale * scale, 1e-9)) if memory is not None else ny * nx
        if fits >= ny * nx:
            rows = cols = None
        elif fits // nx >= 2 * h + 1:
            rows, cols = fits // nx - 2 * h, None
        else:
            rows = cols = max(math.isqrt(max(fits, 0)) - 2 * h, 1)
    elif tile is None:
        rows = cols = None
    else:
        rows = cols = int(tile) // scale - 2 * h
    return [Tile((slice(y0, y1), slice(x0, x1)),
                 (slice(max(0, y0 - h), min(ny, y1 + h)), slice(max(0, x0 - h), min(nx, x1 + h))))
            for y0, y1 in _cores(ny, rows) for x0, x1 in _cores(nx, cols)]


@lru_cache(maxsize=32)
def _matrix(length: int, scale: int, device: torch.device) -> torch.Tensor:
    """``bicubic_matrix`` as float32 on ``device`` (cached: archives repeat their sizes)."""
    return torch.as_tensor(bicubic_matrix(length, scale), dtype=torch.float32, device=device)


def _band(lo: int, hi: int, length: int) -> slice:
    """LR pixels the bicubic of output LR range [lo, hi) reads (Keys' kernel reaches 2 px; mirrored inside)."""
    return slice(max(0, lo - 3), min(length, hi + 3))


@torch.inference_mode()
def tiled_sr(net: SRNet, lr_net: np.ndarray, lr_base: np.ndarray, scale: int, gain: float,
             tile: int | str | list[Tile] | None = "auto", batch: int = 1, device: torch.device | None = None,
             dtype: torch.dtype = torch.float32, progress: Progress | None = None) -> np.ndarray:
    """``bicubic(lr_base) + gain * net.residual(lr_net, scale)`` at ``scale`` times the size, float64.

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
    tile : int, "auto", None or list of Tile
        As ``plan_tiles`` (``"auto"`` against the memory left under the default limit), or tiles already planned.
    batch : int
        Tiles of the same size per forward pass.
    device : torch.device, optional
        Where ``net`` runs and the output is assembled (default CPU).
    dtype : torch.dtype
        Precision of ``net``'s input.
    progress : callable, optional
        Called as ``progress(done, total)`` after each batch.
    """
    device = device or torch.device("cpu")
    ny, nx = lr_net.shape
    s = int(scale)
    tiles = tile if isinstance(tile, list) else plan_tiles(
        net, (ny, nx), s, tile, activation_bytes(net, s) if tile == "auto" else 0.0,
        headroom() if tile == "auto" else None)
    offset = float(np.mean(lr_base))
    base = torch.from_numpy(np.asarray(lr_base, dtype=np.float64) - offset).to(device=device, dtype=torch.float32)
    z = torch.from_numpy(np.ascontiguousarray(lr_net, dtype=np.float32)).to(device)
    wy, wx = _matrix(ny, s, device), _matrix(nx, s, device)
    out = torch.empty((ny * s, nx * s), dtype=torch.float32, device=device)
    groups: list[list[Tile]] = []
    for t in tiles:
        if groups and len(groups[-1]) < batch and _read_shape(groups[-1][0]) == _read_shape(t):
            groups[-1].append(t)
        else:
            groups.append([t])
    done = 0
    for group in groups:
        net_in = torch.stack([z[t.read] for t in group])[:, None].to(dtype=dtype)
        residual = net.residual(net_in.contiguous(memory_format=torch.channels_last), s)
        for t, res in zip(group, residual, strict=True):
            (cy, cx), (ry, rx) = t.core, t.read
            oy, ox = slice(cy.start * s, cy.stop * s), slice(cx.start * s, cx.stop * s)
            by, bx = _band(cy.start, cy.stop, ny), _band(cx.start, cx.stop, nx)
            bicubic = wy[oy, by] @ base[by, bx] @ wx[ox, bx].T
            part = res[0, (cy.start - ry.start) * s:(cy.stop - ry.start) * s,
                       (cx.start - rx.start) * s:(cx.stop - rx.start) * s]
            out[oy, ox] = bicubic.add_(part.float(), alpha=gain)
        done += len(group)
        if progress is not None:
            progress(done, len(tiles))
    return np.add(out.cpu().numpy(), offset, dtype=np.float64)


def _read_shape(t: Tile) -> tuple[int, int]:
    """The LR shape a tile's network input has (tiles batch together only where it is the same)."""
    return t.read[0].stop - t.read[0].start, t.read[1].stop - t.read[1].start
