"""From a height map in meters to one with ``scale`` times the pixels and the same scan size, and back to numbers.

``enhance`` is what ``afm-sr enhance`` runs on each file; ``check_gain`` is the paper's protocol on a
user's own high-resolution scan (what ``afm-sr check-gain`` prints).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from afm_sr.choices import CHECK_PAIRS
from afm_sr.degrade import BicubicDegradation, Degradation, check_scale, degrade, imresize, modcrop
from afm_sr.errors import AFMFileError, InputError
from afm_sr.infer import adapt as own
from afm_sr.infer.adapt import Pairs, SelfCheck
from afm_sr.infer.devices import resolve_device, resolve_precision
from afm_sr.infer.tiling import Plan, Progress, pass_limit, plan, tiled_sr
from afm_sr.infer.weights import SRModel, load_model
from afm_sr.io import HeightMap
from afm_sr.io.budget import format_size, headroom, reserve
from afm_sr.io.heightmap import PixelSize, as_heightmap, value_problem
from afm_sr.models import SRNet
from afm_sr.models.checkpoint import nonfinite_weights
from afm_sr.preprocess import fit_normalization, level

log = logging.getLogger(__name__)

DEFAULT_TILE = "auto"
#: Tiles per forward pass when none is asked for: batching pays on a GPU; on a CPU it only costs memory.
DEFAULT_BATCH = {"cpu": 1, "cuda": 8}
#: The self-check's network work as a share of the enhancement's at most: its pairs are the scan downscaled by s
#: (1/s^2 of the work), so x4 and x8 check the whole scan and x2 a central band of 40 % of the scan lines.
SELF_CHECK_SHARE = 0.1
#: The share of a GPU's free memory that ``tile="auto"`` lets the network's activations take.
GPU_SHARE = 0.8
#: Memory estimates (bytes per pixel, checked against ``afm_sr.io.budget``; measured on CPU with ru_maxrss):
#: float64 arrays made from the input (heights, leveled, z-scored, clipped) and their float32 copies for the device,
INPUT_BYTES = 56
#: the float32 result assembled on the device and the float64 result per output pixel,
OUTPUT_BYTES = 12
#: and check_gain's SSIM: torchmetrics' 11x11 Gaussian convolution of 5 float64 maps for 2 images per HR pixel.
SSIM_BYTES = 2 * 5 * 11 * 11 * 8


def _check_scale_for(model: SRModel, scale: int, shape: tuple[int, int]) -> int:
    """The scale as int if the image is large enough and the model was trained for it (InputError otherwise)."""
    s = check_scale(scale, shape)
    if s not in model.info.scales:
        raise InputError(f"the model {model.info.source} was trained for scales {list(model.info.scales)}, "
                         f"not x{s}")
    return s


def _planned_tiles(what: str, shape: tuple[int, int], scale: int, per_image_px: int, model: SRModel,
                   tile: int | str | None, batch: int, precision: str | int, device: str | torch.device,
                   memory_limit: int | str | None) -> Plan:
    """The tiling plan for an LR image of ``shape``, refusing work over the memory limit (InputError naming the size).

    ``per_image_px`` bytes for each LR pixel, plus the network's peak (``Plan.peak``: ``batch`` of the largest tiles,
    and a split network's feature map); ``tile="auto"`` takes the whole image where that fits what is left, else the
    largest tiles that do.
    """
    s, dev = int(scale), resolve_device(device)
    fixed = shape[0] * shape[1] * per_image_px
    room = headroom(memory_limit) - fixed
    if dev.type == "cuda":  # the activations live in the GPU's own memory
        room = min(room, int(GPU_SHARE * torch.cuda.mem_get_info(dev)[0]))
    work = plan(model.net, shape, s, tile, batch, resolve_precision(precision, dev), room, pass_limit(dev))
    reserve(fixed + work.peak, what, limit=memory_limit)
    return work


@contextmanager
def _out_of_memory_as_input_error() -> Iterator[None]:
    """An allocation that fails anyway (memory taken by others, a GPU's own memory) becomes one clear InputError."""
    try:
        yield
    except (MemoryError, torch.OutOfMemoryError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"out of memory ({first}); use a smaller --tile or free memory") from exc


def _checked_result(result: np.ndarray, model: SRModel) -> np.ndarray:
    """``result`` if every value is finite and float32-representable; an error naming the likely cause otherwise."""
    problem = value_problem(result, float32=True)
    if problem is None:
        return result
    weights = nonfinite_weights(model.net.parameters())
    if weights:
        raise AFMFileError(model.info.source, f"{weights}; use another checkpoint")
    raise InputError(f"the result is not usable: {problem}")


def _prepared_net(model: SRModel, device: str | torch.device, precision: str | int
                  ) -> tuple[SRNet, torch.device, torch.dtype]:
    """The model's copy on the device in the precision, channels-last (faster convolutions), made once per model."""
    dev = resolve_device(device)
    dtype = resolve_precision(precision, dev)
    return model.prepared(dev, dtype), dev, dtype


def enhance(image: HeightMap | np.ndarray, scale: int = 4, model: str | os.PathLike | SRModel = "default",
            pixel_size: PixelSize = None, level_plane: bool = False,
            device: str | torch.device = "auto", precision: str | int = "32", tile: int | str | None = DEFAULT_TILE,
            batch: int | None = None, progress: Progress | None = None, memory_limit: int | str | None = None,
            adapt: bool | None = None, self_check: bool = True, seed: int = 0,
            adapt_progress: Progress | None = None, adapt_pairs: Pairs | None = None,
            check_pairs: str = CHECK_PAIRS[0]) -> HeightMap:
    """Super-resolve a height map by ``scale`` with the model and return it in the input's units and scan size.

    The network sees what it saw in training: the input (optionally plane-leveled) clipped to its
    2.5..97.5th percentile, z-scored, and bicubic-upscaled by ``scale``. Its *residual* (the detail it adds
    to that bicubic input) is scaled back by the z-score's std and added to the bicubic upscaling of the
    *unclipped* heights::

        output = bicubic(heights) + std * (net(z_up) - z_up),    z_up = bicubic(zscore(clip(heights)))

    so heights that the clip removes for the network (spikes, deep pits, tall particles) are still in
    the output at the height bicubic interpolation gives them, and the result is in meters (or whatever
    ``z_unit`` the input has). The pixel size becomes ``pixel_size / scale``: the scan size is unchanged.

    Parameters
    ----------
    image : HeightMap or numpy.ndarray
        The scan; a 2-D array is taken as heights in meters with ``pixel_size`` (1 m per pixel if None).
    scale : int
        2, 4 or 8.
    model : str, os.PathLike or SRModel
        ``"default"`` (the packaged model), a checkpoint or ``.safetensors`` path, or a loaded SRModel.
    pixel_size : (float, float) or float, optional
        (dx, dy) or one value in meters, overriding the HeightMap's.
    level_plane : bool
        Subtract the least-squares plane first (the output is then the leveled map).
    device : str or torch.device
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    precision : str
        ``"32"`` or ``"bf16"`` for the convolutions (the bicubic of the heights minus their mean and the sum are
        float32 on the device, the mean is added back in float64, so meters keep their detail).
    tile : int, "auto" or None
        Output pixels per tile side, bounding memory (``"auto"``: the whole image where the network's activations
        fit the memory limit, else the largest full-width strips or tiles that do; None: the whole image in one
        pass; the result is the same: tiles are exact cores plus halos, ``afm_sr.infer.tiling``).
    batch : int, optional
        Tiles per forward pass (default: 1 on a CPU, 8 on a GPU).
    progress : callable, optional
        ``progress(done, total)`` after each batch of tiles.
    memory_limit : int or str, optional
        Bytes (or ``"4G"``) the result and the work arrays may take; default ``$AFM_SR_MEMORY_LIMIT`` or half
        the available memory (``afm_sr.io.budget``). Checked before anything of that size is allocated.
    adapt : bool or None
        Fine-tune a copy of the model on the scan's own pairs first (``afm_sr.adapt``) and use it where it beats
        the base model on held-out scan lines; None: where experiments/adapt found it helps (``ADAPT_BY_DEFAULT``).
    self_check : bool
        Estimate the gain over bicubic on the scan's own pairs (held-out lines when adapting), log it and store
        it in the result's metadata (``afm_sr_self_check``, ``afm_sr_estimated_gain_db``); skipped on scans too
        small for it. At x2 it uses the middle 40 % of the scan lines (``SELF_CHECK_SHARE``), so it costs at most
        a tenth of the enhancement.
    seed : int
        Fixes the adaptation's random crops (the same seed gives the same result).
    adapt_progress : callable, optional
        ``adapt_progress(step, steps)`` after each adaptation step.
    adapt_pairs : ``"bicubic"``, ``"trained"`` or None
        How the scan is downscaled into its own training pairs (``afm_sr.infer.adapt.pair_degradation``;
        default: the scale's ``RECIPES``).
    check_pairs : ``"instrument"`` or ``"bicubic"``
        What the self-check assumes a coarser scan of the sample is (``afm_sr.infer.adapt.check_degradation``):
        by default one that averages each pixel along the fast axis, as an instrument records it.

    Raises InputError for heights that are NaN/Inf or beyond float32, work over the memory limit, or a result
    that is not finite (AFMFileError naming the model where its weights are NaN/Inf). Warns (logging) where the
    model's metadata says it does not beat bicubic at this scale.
    """
    hm = as_heightmap(image, pixel_size)
    sr = load_model(model)
    s = _check_scale_for(sr, scale, hm.shape)
    (ny, nx), (out_y, out_x) = hm.shape, (hm.shape[0] * s, hm.shape[1] * s)
    batch = batch or DEFAULT_BATCH[resolve_device(device).type]
    tiles = _planned_tiles(f"the x{s} result of a {nx}x{ny} px image ({out_x}x{out_y} px, "
                           f"{format_size(OUTPUT_BYTES * out_y * out_x)}) with its work arrays", (ny, nx), s,
                           INPUT_BYTES + OUTPUT_BYTES * s * s, sr, tile, batch, precision, device, memory_limit)
    warning = sr.info.gain_warning(s)
    if warning:
        log.warning(warning)
    heights = level(hm.data) if level_plane else hm.data
    norm = fit_normalization(heights)
    sr, check = _own_pairs(sr, heights, s, adapt, self_check, seed, device, precision, adapt_progress, adapt_pairs,
                           check_pairs)
    net, dev, dtype = _prepared_net(sr, device, precision)
    with _out_of_memory_as_input_error():
        out = tiled_sr(net, norm.apply(heights).astype(np.float32), heights, s, norm.std, tile=tiles, batch=batch,
                       device=dev, dtype=dtype, progress=progress)
    result = _finer(hm, _checked_result(out, sr), s)
    result.metadata.update({"afm_sr_scale": s, "afm_sr_model": sr.info.source, "afm_sr_leveled": level_plane,
                            "afm_sr_precision": str(precision)})
    result.metadata.update(check.metadata() if check else {})
    return result


def _own_pairs(sr: SRModel, heights: np.ndarray, scale: int, adapt: bool | None, self_check: bool, seed: int,
               device: str | torch.device, precision: str | int, progress: Progress | None,
               pairs: Pairs | None = None, check_pairs: str = CHECK_PAIRS[0]) -> tuple[SRModel, SelfCheck | None]:
    """The model to use and the self-check on the scan's own pairs (adapted where asked; None if not checked).

    Adapting by default (``adapt=None`` at a scale of ``ADAPT_BY_DEFAULT``) quietly falls back to the self-check
    on a scan too small to hold out lines; asking for it (``adapt=True``) raises InputError there.
    """
    if adapt or (adapt is None and own.ADAPT_BY_DEFAULT.get(scale, False)):
        try:
            adapted = own.adapt(sr, heights, scale, seed=seed, device=device, precision=precision,
                                progress=progress, pairs=pairs)
        except InputError as exc:
            if adapt:
                raise
            log.info("not adapting: %s", exc)
        else:
            log.info(adapted.check.message())
            return adapted.model, adapted.check
    if not self_check:
        return sr, None
    try:
        check = own.self_check(sr, heights, scale, device=device, precision=precision,
                               lines=min(1.0, SELF_CHECK_SHARE * scale * scale), pairs=check_pairs)
    except InputError as exc:
        log.info("no self-check: %s", exc)
        return sr, None
    log.info(check.message())
    return sr, check


@dataclass(frozen=True)
class GainResult:
    """PSNR (dB) and SSIM of bicubic and of the model on one image, as the paper measures them."""

    scale: int
    shape: tuple[int, int]
    bicubic_psnr: float
    bicubic_ssim: float
    model_psnr: float
    model_ssim: float
    convention: str = "range01"
    self_check: SelfCheck | None = None

    @property
    def psnr_gain(self) -> float:
        """Model minus bicubic PSNR in dB (positive: the model helps)."""
        return self.model_psnr - self.bicubic_psnr

    @property
    def ssim_gain(self) -> float:
        """Model minus bicubic SSIM."""
        return self.model_ssim - self.bicubic_ssim


def check_gain(image: HeightMap | np.ndarray, scale: int = 4, model: str | os.PathLike | SRModel = "default",
               level_plane: bool = False, device: str | torch.device = "auto", precision: str | int = "32",
               tile: int | str | None = DEFAULT_TILE, batch: int | None = None,
               progress: Progress | None = None, memory_limit: int | str | None = None, adapt: bool = False,
               seed: int = 0, adapt_progress: Progress | None = None,
               degradation: Degradation | None = None) -> GainResult:
    """Degrade a high-resolution scan as in the paper, restore it with bicubic and the model, and score both.

    The scan is (optionally leveled,) clipped to its 2.5..97.5th percentile and z-scored, cropped to a
    multiple of ``scale``, bicubic-downscaled by ``scale`` and restored to its size by bicubic and by the
    model. PSNR/SSIM use the ``range01`` convention (the HR's clipped range mapped to [0, 1]) with a border
    of ``scale`` pixels, through the same code as training and ``eval.py``. ``memory_limit`` as in ``enhance``
    (SSIM alone takes about 10 kB per pixel of the scan). With ``adapt`` the model is first adapted as
    ``enhance(adapt=True)`` would, on the low-resolution image alone (its own pairs, degraded by bicubic as this
    check degrades the scan: the known-kernel case), never on the scan scored against; ``self_check`` then holds
    the estimate that adaptation made. ``degradation`` replaces the paper's bicubic downscaling (e.g. an
    ``afm_sr.degrade.acquisition.FixedAcquisition``: what to expect from a scan recorded that way); its noise is
    seeded by ``seed``.
    """
    from afm_sr.metrics import MetricSpec, psnr_ssim  # torchmetrics (with scipy, matplotlib): only when measuring

    hm = as_heightmap(image, None)
    sr = load_model(model)
    s = _check_scale_for(sr, scale, hm.shape)
    ny, nx = hm.shape
    batch = batch or DEFAULT_BATCH[resolve_device(device).type]
    lr_shape = (ny // s, nx // s)  # the LR of the scan cropped to a multiple of s
    tiles = _planned_tiles(f"measuring the gain on a {nx}x{ny} px image", lr_shape, s,
                           (INPUT_BYTES + SSIM_BYTES) * s * s, sr, tile, batch, precision, device, memory_limit)
    heights = level(hm.data) if level_plane else hm.data
    norm = fit_normalization(heights)
    hr = modcrop(torch.from_numpy(norm.apply(heights)), s)
    if min(hr.shape) < 2 * s:
        raise InputError(f"a {heights.shape[0]}x{heights.shape[1]} image is too small to measure the gain at x{s}")
    lr, bicubic = degrade(degradation or BicubicDegradation(), hr, s, torch.Generator().manual_seed(seed))
    lr_np = lr.numpy()
    sr, check = _own_pairs(sr, lr_np, s, adapt, False, seed, device, precision, adapt_progress, pairs="bicubic")
    net, dev, dtype = _prepared_net(sr, device, precision)
    with _out_of_memory_as_input_error():
        restored = torch.from_numpy(_checked_result(tiled_sr(
            net, lr_np.astype(np.float32), lr_np, s, 1.0, tile=tiles, batch=batch, device=dev, dtype=dtype,
            progress=progress), sr))
        spec = MetricSpec("range01")
        z_range = torch.tensor([norm.z_range], dtype=torch.float64)
        preds = torch.stack([bicubic, restored])[:, None]
        psnr, ssim = psnr_ssim(preds, hr.expand_as(preds[:, 0])[:, None], s, spec, z_range.expand(2, 2))
    return GainResult(s, (int(hr.shape[0]), int(hr.shape[1])), float(psnr[0]), float(ssim[0]), float(psnr[1]),
                      float(ssim[1]), spec.convention, check)


def bicubic_upscale(hm: HeightMap, scale: int) -> HeightMap:
    """The plain bicubic upscaling of ``hm`` (MATLAB-compatible), same scan size: what afm-sr is compared with."""
    return _finer(hm, imresize(torch.from_numpy(hm.data), scale=scale).numpy(), scale)


def _finer(hm: HeightMap, data: np.ndarray, scale: int) -> HeightMap:
    """``data`` as ``hm``'s scan with ``scale`` times the pixels a side: pixel size / scale, the same scan size."""
    return hm.with_data(data, (hm.pixel_size[0] / scale, hm.pixel_size[1] / scale))
