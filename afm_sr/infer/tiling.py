"""Super-resolution of whole images of any size, in one pass where memory allows, else in exact tiles.

``bicubic(lr_base) + gain * net.residual(lr_net, s)`` at ``s`` times the size. The bicubic part is the whole
image's: per output block, two matrix products with the rows and columns of ``imresize``'s resampling matrices
(float32 on the network's device, of ``lr_base`` minus its mean, the mean added back in float64), so it needs no
tiles. The residual runs on the whole image when its activations fit the memory left (``"auto"``); otherwise the
image is cut into cores (full-width strips first, which share only two edges each) and each core's network input
is the core plus a halo of ``ceil(net.receptive_radius(s) / s) + 1`` LR pixels: an output pixel of the core then
sees exactly what it sees in the whole image, so only the core is kept, no blending is needed, and the tiled
result equals the untiled one up to float rounding. The only repeated work is the halos. A network split into an
LR-grid stage and an upsampling stage (``SRNet.feature_channels``) runs the first on the whole image where its feature
map fits (it needs ~1/s^2 of the memory per input pixel that the upsampling does) and cuts only the upsampling, whose
halos are a few pixels, so a strip no longer repeats the body's reach of tens of pixels.
"""

from __future__ import annotations

import itertools
import json
import math
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from afm_sr.degrade import bicubic_matrix
from afm_sr.errors import InputError
from afm_sr.io.budget import headroom
from afm_sr.models import SRNet

#: ``progress(done, total)`` is called after each batch of tiles.
Progress = Callable[[int, int], None]
#: The probe's live-tensor peak times this is the estimate: room for what the dispatcher does not see (oneDNN
#: scratchpads, allocator rounding). Measured on CPU with ru_maxrss at 1-4 M output px, the tracked peak was
#: 0.97-1.0x the measured one per output pixel for MultiScaleResNet (x2/x4/x8, fp32 and bf16) and VDSR 20x64, the
#: rest a fixed cost of 15-30 MB (kernels and their caches, the runtime the memory budget does not count).
PEAK_MARGIN = 1.05
#: LR columns per block of the bicubic's column product (each block reads only its band of the image).
BICUBIC_BLOCK = 128
#: LR side of the probe that measures a network's peak.
PROBE_LR = 16
#: Output pixels per pass of a split network's upsampling on a CPU at most: its activations are then ~2 GB, not ~9;
#: at 1024 px x8 (fp32, one thread) strips of 128 LR rows took 34 s against 71 s for 3 strips of 341 rows, their
#: 3 px halos included (experiments/bench/RESULTS.md). A GPU takes the largest passes that fit.
CPU_PASS_PX = 1 << 23


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


#: Elements per output pixel, per (architecture, its kwargs, scale, stage): copies of one network probe the same.
_PROBED: dict[tuple[type, str, int, str], float] = {}


def activation_bytes(net: SRNet, scale: int, dtype: torch.dtype | None = None, stage: str = "residual") -> float:
    """Bytes per output pixel that ``stage`` of ``net`` at ``scale`` (in ``dtype``, default its own) holds at its peak.

    Measured once per architecture, scale and stage by a probe run (``live_peak``), times ``PEAK_MARGIN``; the
    ``features`` stage runs on the LR grid, so its bytes per output pixel are its bytes per input pixel / scale^2.
    """
    key = (type(net), json.dumps(net.arch_kwargs, sort_keys=True), int(scale), stage)
    if key not in _PROBED:
        _PROBED[key] = _probe(net, int(scale), stage)
    return PEAK_MARGIN * _PROBED[key] * (dtype or next(net.parameters()).dtype).itemsize


def _probe(net: SRNet, scale: int, stage: str) -> float:
    """Elements per output pixel alive at once at the peak of ``stage`` (its input and result included).

    Every activation of these networks has a size proportional to the output's (convolutions keep their input's
    size), so the peak on a PROBE_LR px square is the peak per output pixel of any input.
    """
    param = next(net.parameters())
    lr = torch.zeros(1, 1, PROBE_LR, PROBE_LR, device=param.device, dtype=param.dtype)
    with torch.inference_mode():
        if stage == "upsample":
            features = net.features(lr)
            peak = live_peak(lambda: net.upsample(features, scale), [features], list(net.parameters()))
        else:
            run = net.features if stage == "features" else (lambda x: net.residual(x, scale))
            peak = live_peak(lambda: run(lr), [lr], list(net.parameters()))
    return peak / param.element_size() / (PROBE_LR * scale) ** 2


class _LiveTensors(TorchDispatchMode):
    """Bytes of the tensor storages that operators create and that are still referenced, and their maximum.

    Each operator's outputs are counted once per storage (views and in-place results share their storage) and
    released when the last tensor on that storage is freed, so ``peak`` is the most memory the operators' results
    held at once: what the caching of activations in an eval forward really keeps, not a per-layer guess.
    """

    def __init__(self, counted: list[torch.Tensor], ignored: list[torch.Tensor]) -> None:
        super().__init__()
        self.live = self.peak = 0
        self._storages: dict[int, list[int]] = {}  # data_ptr -> [bytes, tensors on it]
        self._ignored = {t.untyped_storage().data_ptr() for t in ignored}
        self._tensors: set[int] = set()
        for t in counted:
            self._add(t)

    def __torch_dispatch__(self, func: Callable[..., object], types: tuple[type, ...], args: tuple = (),
                           kwargs: dict | None = None) -> object:
        """Run the operator and count the storages of its results."""
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._add(t)
        return out

    def _add(self, t: torch.Tensor) -> None:
        """Count ``t``'s storage if it is new, and release it when the last tensor on it is freed."""
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if id(t) in self._tensors or ptr in self._ignored:
            return
        entry = self._storages.setdefault(ptr, [storage.nbytes(), 0])
        if entry[1] == 0:
            self.live += entry[0]
            self.peak = max(self.peak, self.live)
        entry[1] += 1
        self._tensors.add(id(t))
        weakref.finalize(t, self._release, id(t), ptr)

    def _release(self, tensor_id: int, ptr: int) -> None:
        """One tensor on ``ptr`` freed; the storage's bytes go when it was the last."""
        self._tensors.discard(tensor_id)
        entry = self._storages.get(ptr)
        if entry is not None:
            entry[1] -= 1
            if entry[1] == 0:
                self.live -= entry[0]
                del self._storages[ptr]


def live_peak(run: Callable[[], object], counted: list[torch.Tensor], ignored: list[torch.Tensor]) -> int:
    """The most bytes that ``run()``'s operator results (plus ``counted``, e.g. its inputs) held at once.

    ``ignored`` tensors (e.g. the weights) are not counted, nor are views of them; the result of ``run`` is
    counted until it is freed, which is after the peak is read here.
    """
    with _LiveTensors(counted, ignored) as mode:
        result = run()
        peak = mode.peak
    del result
    return peak


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


@dataclass(frozen=True)
class Plan:
    """How ``tiled_sr`` covers one image, and the bytes its work holds at the most (``peak``).

    ``tiles`` are the residual's, or for a split network its upsampling's, after ``features``: the tiles of its
    LR-grid stage, run first into one feature map.
    """

    tiles: list[Tile]
    features: list[Tile] | None
    peak: int


def _cores(length: int, core: int | None) -> list[tuple[int, int]]:
    """``length`` cut into near-equal pieces of at most ``core`` (one piece for None)."""
    pieces = 1 if core is None or core >= length else math.ceil(length / core)
    bounds = [round(i * length / pieces) for i in range(pieces + 1)]
    return list(itertools.pairwise(bounds))


def plan_tiles(margin: int, shape: tuple[int, int], scale: int, tile: int | str | None,
               px_bytes: float = 0.0, memory: int | None = None) -> list[Tile]:
    """The tiles of an LR image of ``shape`` for work that reaches ``margin`` output pixels (``exact_margin``).

    Parameters
    ----------
    margin : int
        Output pixels next to a tile edge that the work reaches (sets the halos).
    shape : (int, int)
        LR rows and columns.
    scale : int
        The scale factor.
    tile : int, "auto" or None
        Output pixels per tile side (read region, halos included); None: the whole image; ``"auto"``: the whole
        image if ``px_bytes`` per output pixel fit ``memory``, else the tallest full-width strips that fit, else the
        largest square tiles that fit, else the smallest tiles (which the caller's memory check then refuses).
    px_bytes : float
        Activation bytes per output pixel of the work (``activation_bytes``), for ``"auto"``.
    memory : int, optional
        Bytes the activations may take, for ``"auto"`` (None: no bound).
    """
    ny, nx = shape
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


def plan(net: SRNet, shape: tuple[int, int], scale: int, tile: int | str | None = "auto", batch: int = 1,
         dtype: torch.dtype | None = None, memory: int | None = None, pass_px: int | None = None) -> Plan:
    """The plan of ``net`` over an LR image of ``shape`` with ``batch`` tiles per pass (``tile`` as ``plan_tiles``).

    A split network (``feature_channels``) runs its LR-grid stage into one feature map where that map leaves room
    under ``memory``, and only its upsampling in tiles, for ``"auto"`` of at most ``pass_px`` output pixels a pass
    (``CPU_PASS_PX`` on a CPU); otherwise the whole residual runs per tile.
    """
    s = int(scale)
    ny, nx = shape
    itemsize = (dtype or next(net.parameters()).dtype).itemsize
    feature_map = net.feature_channels * ny * nx * itemsize
    if net.feature_channels and (memory is None or memory > feature_map):
        room = None if memory is None else memory - feature_map
        f_bytes, u_bytes = (batch * activation_bytes(net, s, dtype, stage) for stage in ("features", "upsample"))
        features = plan_tiles(net.feature_radius() * s, shape, s, tile, f_bytes, room)
        pass_room = None if pass_px is None else int(pass_px * u_bytes / batch)  # a pass holds ``batch`` tiles
        tail_room = min((r for r in (room, pass_room) if r is not None), default=None)
        tiles = plan_tiles(max(net.upsample_radius(s), 2 * s), shape, s, tile, u_bytes, tail_room)
        peak = feature_map + max(largest_out_px(features, s) * f_bytes, largest_out_px(tiles, s) * u_bytes)
        return Plan(tiles, features, int(peak))
    px_bytes = batch * activation_bytes(net, s, dtype)
    tiles = plan_tiles(exact_margin(net, s), shape, s, tile, px_bytes, memory)
    return Plan(tiles, None, int(largest_out_px(tiles, s) * px_bytes))


def pass_limit(device: torch.device) -> int | None:
    """Output pixels per upsampling pass at most on ``device`` (``CPU_PASS_PX`` on a CPU, else no limit)."""
    return CPU_PASS_PX if device.type == "cpu" else None


@lru_cache(maxsize=32)
def _matrix(length: int, scale: int, device: torch.device) -> torch.Tensor:
    """``bicubic_matrix`` as float32 on ``device`` (cached: archives repeat their sizes)."""
    return torch.as_tensor(bicubic_matrix(length, scale), dtype=torch.float32, device=device)


def _band(lo: int, hi: int, length: int) -> slice:
    """LR pixels the bicubic of output LR range [lo, hi) reads (Keys' kernel reaches 2 px; mirrored inside)."""
    return slice(max(0, lo - 3), min(length, hi + 3))


@torch.inference_mode()
def tiled_sr(net: SRNet, lr_net: np.ndarray, lr_base: np.ndarray, scale: int, gain: float,
             tile: int | str | Plan | None = "auto", batch: int = 1, device: torch.device | None = None,
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
    tile : int, "auto", None or Plan
        As ``plan`` (``"auto"`` against the memory left under the default limit), or a plan already made.
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
    work = tile if isinstance(tile, Plan) else plan(net, (ny, nx), s, tile, batch, dtype,
                                                    headroom() if tile == "auto" else None, pass_limit(device))
    offset = float(np.mean(lr_base))
    base = torch.from_numpy(np.asarray(lr_base, dtype=np.float64) - offset).to(device=device, dtype=torch.float32)
    source = torch.from_numpy(np.ascontiguousarray(lr_net, dtype=np.float32)).to(device=device, dtype=dtype)[None]
    wy, wx = _matrix(ny, s, device), _matrix(nx, s, device)
    out = torch.empty((ny * s, nx * s), dtype=torch.float32, device=device)
    total = len(work.tiles) + len(work.features or [])
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    def run(x: torch.Tensor) -> torch.Tensor:
        """The residual, or the upsampling of the features computed first."""
        return net.residual(x, s) if work.features is None else net.upsample(x, s)

    if work.features is not None:
        features = torch.empty((1, net.feature_channels, ny, nx), dtype=dtype, device=device,
                               memory_format=torch.channels_last)[0]
        for t, core in _run_tiles(net.features, source, work.features, 1, batch, step):
            features[:, t.core[0], t.core[1]] = core
        source = features
    for t, core in _run_tiles(run, source, work.tiles, s, batch, step):
        cy, cx = t.core
        out[cy.start * s:cy.stop * s, cx.start * s:cx.stop * s] = _bicubic(base, wy, wx, cy, cx, s).add_(
            core[0].float(), alpha=gain)
    return np.add(out.cpu().numpy(), offset, dtype=np.float64)


def _run_tiles(run: Callable[[torch.Tensor], torch.Tensor], source: torch.Tensor, tiles: list[Tile], scale: int,
               batch: int, step: Callable[[int], None]) -> Iterator[tuple[Tile, torch.Tensor]]:
    """Each tile with the core of ``run`` on its read region of ``source`` (C, h, w), ``batch`` same-size tiles a pass.

    ``run`` maps (N, C, h, w) to (N, C', scale*h, scale*w); ``step(n)`` is called after each pass of n tiles.
    """
    groups: list[list[Tile]] = []
    for t in tiles:
        if groups and len(groups[-1]) < batch and _read_shape(groups[-1][0]) == _read_shape(t):
            groups[-1].append(t)
        else:
            groups.append([t])
    for group in groups:
        x = torch.stack([source[:, t.read[0], t.read[1]] for t in group]) if len(group) > 1 else \
            source[None, :, group[0].read[0], group[0].read[1]]
        result = run(x.contiguous(memory_format=torch.channels_last))
        for t, res in zip(group, result, strict=True):
            (cy, cx), (ry, rx) = t.core, t.read
            yield t, res[:, (cy.start - ry.start) * scale:(cy.stop - ry.start) * scale,
                         (cx.start - rx.start) * scale:(cx.stop - rx.start) * scale]
        step(len(group))


def _bicubic(base: torch.Tensor, wy: torch.Tensor, wx: torch.Tensor, cy: slice, cx: slice, s: int) -> torch.Tensor:
    """The bicubic upscaling of ``base`` over the LR core (cy, cx): ``wy @ base @ wx.T`` on the matrices' bands.

    The column product is taken in blocks of BICUBIC_BLOCK LR columns, each with its own band, so a full-width strip
    costs ~4 + 6 / BICUBIC_BLOCK multiply-adds per output pixel and LR column read instead of the whole width's.
    """
    ny, nx = base.shape
    by, bxs = _band(cy.start, cy.stop, ny), _band(cx.start, cx.stop, nx)
    rows = wy[cy.start * s:cy.stop * s, by] @ base[by, bxs]
    out = torch.empty((rows.shape[0], (cx.stop - cx.start) * s), dtype=rows.dtype, device=rows.device)
    for x0 in range(cx.start, cx.stop, BICUBIC_BLOCK):
        x1 = min(x0 + BICUBIC_BLOCK, cx.stop)
        bx = _band(x0, x1, nx)
        out[:, (x0 - cx.start) * s:(x1 - cx.start) * s] = (rows[:, bx.start - bxs.start:bx.stop - bxs.start]
                                                          @ wx[x0 * s:x1 * s, bx].T)
    return out


def _read_shape(t: Tile) -> tuple[int, int]:
    """The LR shape a tile's network input has (tiles batch together only where it is the same)."""
    return t.read[0].stop - t.read[0].start, t.read[1].stop - t.read[1].start
