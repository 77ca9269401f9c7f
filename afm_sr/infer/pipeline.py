"""From a height map in meters to one with ``scale`` times the pixels and the same scan size, and back to numbers.

``enhance`` is what ``afm-sr enhance`` runs on each file; ``check_gain`` is the paper's protocol on a
user's own high-resolution scan (what ``afm-sr check-gain`` prints).
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass

import numpy as np
import torch

from afm_sr.degrade import BicubicDegradation, check_scale, degrade, imresize, modcrop
from afm_sr.errors import InputError
from afm_sr.infer.tiling import Progress, tiled_sr
from afm_sr.infer.weights import SRModel, load_model
from afm_sr.io import HeightMap
from afm_sr.metrics import MetricSpec, psnr_ssim
from afm_sr.models import SRNet
from afm_sr.preprocess import fit_normalization, level

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = {"32": torch.float32, "bf16": torch.bfloat16}
DEFAULT_TILE = "auto"
#: Tiles per forward pass when none is asked for: batching pays on a GPU; on a CPU it only costs memory.
DEFAULT_BATCH = {"cpu": 1, "cuda": 8}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` (CUDA if PyTorch sees a GPU, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; InputError otherwise."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InputError(f"device {name!r}: PyTorch {torch.__version__} sees no CUDA GPU here; "
                             "use --device cpu (or auto)")
        try:
            dev = torch.device(name)
        except RuntimeError as exc:
            raise InputError(f"device {name!r} is not a valid CUDA device name ({exc})") from exc
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) are visible")
        return dev
    raise InputError(f"device {name!r} is not supported; choose one of {list(DEVICES)} (or cuda:N)")


def resolve_precision(precision: str | int, device: torch.device) -> torch.dtype:
    """``32`` (float32) or ``bf16`` (bfloat16 convolutions) as a dtype; InputError if unknown or unsupported."""
    name = str(precision)
    if name not in PRECISIONS:
        raise InputError(f"precision {precision!r} is not supported; choose one of {list(PRECISIONS)}")
    if PRECISIONS[name] is torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InputError(f"precision bf16: the GPU {torch.cuda.get_device_name(device)} does not support bfloat16")
    return PRECISIONS[name]


def _check_scale_for(model: SRModel, scale: int, shape: tuple[int, int]) -> int:
    """The scale as int if the image is large enough and the model was trained for it (InputError otherwise)."""
    s = check_scale(scale, shape)
    if s not in model.info.scales:
        raise InputError(f"the model {model.info.source} was trained for scales {list(model.info.scales)}, "
                         f"not x{s}")
    return s


def _as_heightmap(image: HeightMap | np.ndarray, pixel_size: tuple[float, float] | float | None) -> HeightMap:
    """A HeightMap from a HeightMap or a 2-D array (pixel size 1 m per pixel where none is given)."""
    if pixel_size is not None:
        pixel_size = (float(pixel_size), float(pixel_size)) if np.isscalar(pixel_size) else (
            float(pixel_size[0]), float(pixel_size[1]))  # type: ignore[index]
    if isinstance(image, HeightMap):
        return image if pixel_size is None else image.with_data(image.data, pixel_size)
    array = np.asarray(image)
    if array.ndim != 2:
        raise InputError(f"expected a 2-D height map, got an array of shape {array.shape}")
    hm = HeightMap(array, pixel_size or (1.0, 1.0), channel="array")
    if pixel_size is None:
        hm.metadata["pixel_size_unknown"] = True
    return hm


def _prepared_net(model: SRModel, device: str | torch.device, precision: str | int
                  ) -> tuple[SRNet, torch.device, torch.dtype]:
    """A copy of the network on the device in the precision, channels-last (faster convolutions).

    The loaded model itself stays float32 on the CPU, so a bf16 run does not round its weights for later calls.
    """
    dev = resolve_device(device)
    dtype = resolve_precision(precision, dev)
    net = copy.deepcopy(model.net).to(device=dev, dtype=dtype, memory_format=torch.channels_last)
    return net.eval(), dev, dtype


def enhance(image: HeightMap | np.ndarray, scale: int = 4, model: str | os.PathLike | SRModel = "default",
            pixel_size: tuple[float, float] | float | None = None, level_plane: bool = False,
            device: str | torch.device = "auto", precision: str | int = "32", tile: int | str | None = DEFAULT_TILE,
            batch: int | None = None, progress: Progress | None = None) -> HeightMap:
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
        ``"32"`` or ``"bf16"`` for the convolutions (bicubic and the sum stay float64).
    tile : int, "auto" or None
        Output pixels per tile side, bounding memory (``"auto"``: at least 512 and 4 network reaches; None: the
        whole image in one pass; the result is the same).
    batch : int, optional
        Tiles per forward pass (default: 1 on a CPU, 8 on a GPU).
    progress : callable, optional
        ``progress(done, total)`` after each batch of tiles.

    Warns (logging) where the model's metadata says it does not beat bicubic at this scale.
    """
    hm = _as_heightmap(image, pixel_size)
    sr = load_model(model)
    s = _check_scale_for(sr, scale, hm.shape)
    warning = sr.info.gain_warning(s)
    if warning:
        log.warning(warning)
    heights = level(hm.data) if level_plane else hm.data
    norm = fit_normalization(heights)
    net, dev, dtype = _prepared_net(sr, device, precision)
    out = tiled_sr(net, norm.apply(heights).astype(np.float32), heights, s, norm.std, tile=tile,
                   batch=batch or DEFAULT_BATCH[dev.type], device=dev, dtype=dtype, progress=progress)
    result = hm.with_data(out, (hm.pixel_size[0] / s, hm.pixel_size[1] / s))
    result.metadata.update({"afm_sr_scale": s, "afm_sr_model": sr.info.source, "afm_sr_leveled": level_plane,
                            "afm_sr_precision": str(precision)})
    return result


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
               progress: Progress | None = None) -> GainResult:
    """Degrade a high-resolution scan as in the paper, restore it with bicubic and the model, and score both.

    The scan is (optionally leveled,) clipped to its 2.5..97.5th percentile and z-scored, cropped to a
    multiple of ``scale``, bicubic-downscaled by ``scale`` and restored to its size by bicubic and by the
    model. PSNR/SSIM use the ``range01`` convention (the HR's clipped range mapped to [0, 1]) with a border
    of ``scale`` pixels, through the same code as training and ``eval.py``.
    """
    hm = _as_heightmap(image, None)
    sr = load_model(model)
    heights = level(hm.data) if level_plane else hm.data
    s = _check_scale_for(sr, scale, heights.shape)
    norm = fit_normalization(heights)
    hr = modcrop(torch.from_numpy(norm.apply(heights)), s)
    if min(hr.shape) < 2 * s:
        raise InputError(f"a {heights.shape[0]}x{heights.shape[1]} image is too small to measure the gain at x{s}")
    lr, bicubic = degrade(BicubicDegradation(), hr, s)
    net, dev, dtype = _prepared_net(sr, device, precision)
    lr_np = lr.numpy()
    restored = torch.from_numpy(tiled_sr(net, lr_np.astype(np.float32), lr_np, s, 1.0, tile=tile,
                                         batch=batch or DEFAULT_BATCH[dev.type], device=dev, dtype=dtype,
                                         progress=progress))
    spec = MetricSpec("range01")
    z_range = torch.tensor([norm.z_range], dtype=torch.float64)
    preds = torch.stack([bicubic, restored])[:, None]
    psnr, ssim = psnr_ssim(preds, hr.expand_as(preds[:, 0])[:, None], s, spec, z_range.expand(2, 2))
    return GainResult(s, (int(hr.shape[0]), int(hr.shape[1])), float(psnr[0]), float(ssim[0]), float(psnr[1]),
                      float(ssim[1]), spec.convention)


def bicubic_upscale(hm: HeightMap, scale: int) -> HeightMap:
    """The plain bicubic upscaling of ``hm`` (MATLAB-compatible), same scan size: what afm-sr is compared with."""
    up = imresize(torch.from_numpy(hm.data), scale=scale).numpy()
    return hm.with_data(up, (hm.pixel_size[0] / scale, hm.pixel_size[1] / scale))
