"""Loading and exporting trained weights without ever unpickling an object a user hands us.

Two file kinds are accepted, told apart by their content (not their name):

- a Lightning checkpoint from ``train.py`` (``*.ckpt``), read with ``torch.load(..., weights_only=True)``:
  its ``state_dict`` holds ``net.body.<i>.weight/bias`` and its ``afm_sr`` record the architecture;
- an exported ``.safetensors`` file (``export_weights``): tensors ``body.<i>.weight/bias`` and string
  metadata ``format=afm-sr``, ``arch``, ``depth``, ``width``, ``channels``, ``scales`` (JSON list) and,
  optionally, ``gains`` (JSON ``{"2": {"psnr": dB, "ssim": delta}, ...}``: the model's measured gain
  over bicubic per scale, which ``enhance`` uses to warn where the model does not beat bicubic).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from afm_sr.degrade import SUPPORTED_SCALES
from afm_sr.errors import AFMFileError, InputError
from afm_sr.io import check_destination, write_atomically
from afm_sr.models import VDSR

PathLike = str | os.PathLike
#: The name ``model="default"`` resolves to, inside the installed package.
DEFAULT_WEIGHTS = ("weights", "default.safetensors")
FORMAT_TAG = "afm-sr"
ARCHITECTURES = {"VDSR": VDSR}
_RESERVED = ("format", "arch", "depth", "width", "channels", "scales", "gains")
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"


@dataclass(frozen=True)
class ModelInfo:
    """What a weights file says about its network.

    Attributes
    ----------
    arch, depth, width, channels : the architecture (only ``VDSR`` exists).
    scales : scale factors the model was trained for.
    gains : measured gain over bicubic per scale, ``{scale: {"psnr": dB, "ssim": delta}}`` (may be empty).
    source : the file the weights came from (``default`` for the packaged model).
    extra : any further metadata strings of an exported file (data, steps, licence notes, ...).
    """

    arch: str
    depth: int
    width: int
    channels: int
    scales: tuple[int, ...]
    gains: dict[int, dict[str, float]] = field(default_factory=dict)
    source: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def gain_warning(self, scale: int) -> str | None:
        """A sentence for the user where the measured PSNR gain at ``scale`` is not positive, else None."""
        gain = self.gains.get(int(scale), {}).get("psnr")
        if gain is None or gain > 0:
            return None
        return (f"the model {self.source} does not beat bicubic at x{scale} (measured PSNR gain {gain:+.2f} dB, "
                "from its metadata): the result may be no sharper than bicubic interpolation; run "
                "`afm-sr check-gain` on a high-resolution scan of your sample to see what to expect")


@dataclass
class SRModel:
    """A network in eval mode on the CPU in float32, with what its file says about it."""

    net: VDSR
    info: ModelInfo


def default_weights_path() -> Path:
    """Where the packaged pretrained model lives (whether or not it is installed)."""
    return Path(str(resources.files("afm_sr").joinpath(*DEFAULT_WEIGHTS)))


def _guess_kind(path: Path) -> str:
    """``'safetensors'`` or ``'torch'`` from the first bytes, or AFMFileError for anything else."""
    if not path.is_file():
        raise AFMFileError(path, "no such weights file" if not path.exists() else "is not a file")
    with path.open("rb") as handle:
        head = handle.read(9)
    if len(head) == 9 and head[8:9] == b"{":  # 8-byte header length, then the JSON header
        return "safetensors"
    if head.startswith((_ZIP_MAGIC, _PICKLE_MAGIC)):
        return "torch"
    raise AFMFileError(path, "is neither a PyTorch/Lightning checkpoint nor a .safetensors file "
                             "(give a checkpoint from train.py or weights from export_weights)")


def _info_from_record(path: Path, record: Mapping[str, Any], gains: Any = None,
                      extra: Mapping[str, str] | None = None) -> ModelInfo:
    """Validate the architecture record of a weights file into a ModelInfo (AFMFileError if unusable)."""
    try:
        arch = str(record["arch"])
        depth, width, channels = (int(record[k]) for k in ("depth", "width", "channels"))
        scales = tuple(int(s) for s in record["scales"])
        parsed_gains = {int(s): {str(k): float(v) for k, v in g.items()} for s, g in (gains or {}).items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise AFMFileError(path, f"its architecture record is incomplete or malformed ({exc!r}); "
                                 "expected arch, depth, width, channels and scales") from exc
    if arch not in ARCHITECTURES:
        raise AFMFileError(path, f"architecture {arch!r} is not supported; afm-sr knows {sorted(ARCHITECTURES)}")
    return ModelInfo(arch, depth, width, channels, scales, parsed_gains, str(path), dict(extra or {}))


def _read_checkpoint(path: Path) -> tuple[ModelInfo, dict[str, torch.Tensor]]:
    """Architecture and ``body.*`` tensors of a Lightning checkpoint, loaded with ``weights_only=True``."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for foreign objects, RuntimeError/EOFError for broken files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AFMFileError(path, "could not be loaded as plain tensors (weights_only=True): it is corrupt, "
                                 f"truncated or holds arbitrary Python objects, which afm-sr never unpickles "
                                 f"({type(exc).__name__}: {first})") from exc
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict) or "afm_sr" not in ckpt:
        raise AFMFileError(path, "is not a checkpoint written by afm-sr's train.py (no 'state_dict' and "
                                 "'afm_sr' architecture record)")
    record = ckpt["afm_sr"]
    if not isinstance(record, dict):
        raise AFMFileError(path, "its 'afm_sr' architecture record is not a mapping")
    tensors = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items()
               if k.startswith("net.") and isinstance(v, torch.Tensor)}
    return _info_from_record(path, record), tensors


def _read_safetensors(path: Path) -> tuple[ModelInfo, dict[str, torch.Tensor]]:
    """Architecture (metadata) and tensors of an exported ``.safetensors`` file."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            meta = dict(handle.metadata() or {})
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except Exception as exc:  # SafetensorError for bad headers or sizes, OSError for short reads
        raise AFMFileError(path, f"is a corrupt or truncated .safetensors file ({type(exc).__name__}: {exc})") from exc
    if meta.get("format") != FORMAT_TAG:
        raise AFMFileError(path, f"is a .safetensors file but not afm-sr weights (metadata format="
                                 f"{meta.get('format')!r}, expected {FORMAT_TAG!r}); export it with export_weights")
    try:
        record = {**meta, "scales": json.loads(meta.get("scales", "null"))}
        gains = json.loads(meta["gains"]) if "gains" in meta else None
    except json.JSONDecodeError as exc:
        raise AFMFileError(path, f"its metadata is not valid JSON ({exc})") from exc
    extra = {k: v for k, v in meta.items() if k not in _RESERVED}
    return _info_from_record(path, record, gains, extra), tensors


def load_model(model: PathLike | SRModel = "default") -> SRModel:
    """Build the network a weights file describes and load its tensors (safely, never unpickling objects).

    Parameters
    ----------
    model : str, os.PathLike or SRModel
        ``"default"``, a path to a Lightning ``.ckpt`` or an exported ``.safetensors``, or an SRModel
        (returned as is, so callers can load once and enhance many files).

    Raises
    ------
    AFMFileError
        If the file is missing, corrupt, foreign, holds pickled objects, or its tensors do not match
        the architecture it declares; the message names the file.
    """
    if isinstance(model, SRModel):
        return model
    if str(model) == "default":
        path = default_weights_path()
        if not path.is_file():
            raise AFMFileError(path, "no pretrained model is installed with this copy of afm-sr; pass "
                                     "--model PATH (model=PATH) to a checkpoint from train.py or to exported "
                                     ".safetensors weights")
    else:
        path = Path(model)
    kind = _guess_kind(path)
    info, tensors = _read_safetensors(path) if kind == "safetensors" else _read_checkpoint(path)
    if str(model) == "default":
        info = replace(info, source="default")
    net = ARCHITECTURES[info.arch](depth=info.depth, width=info.width, channels=info.channels)
    try:
        net.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise AFMFileError(path, f"its tensors do not match the architecture it declares ({info.arch} depth "
                                 f"{info.depth}, width {info.width}, channels {info.channels}): {detail}") from exc
    return SRModel(net.eval(), info)


def check_gains(gains: Mapping[Any, Any]) -> dict[int, dict[str, float]]:
    """``{scale: {"psnr": dB, "ssim": delta}}``, scales 2/4/8, finite numbers; ValueError saying what is wrong."""
    example = '{"2": {"psnr": 0.5, "ssim": 0.01}}'
    parsed = {}
    for scale, gain in gains.items():
        if str(scale) not in {str(s) for s in SUPPORTED_SCALES}:
            raise ValueError(f"gains: {scale!r} is not a scale; the keys are 2, 4 or 8, e.g. {example}")
        if not isinstance(gain, Mapping) or set(gain) != {"psnr", "ssim"}:
            raise ValueError(f"gains[{scale!r}] must be {{\"psnr\": dB, \"ssim\": delta}}, got {gain!r}")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in gain.values()):
            raise ValueError(f"gains[{scale!r}]: psnr and ssim must be finite numbers, got {gain!r}")
        parsed[int(scale)] = {k: float(v) for k, v in gain.items()}
    return parsed


def export_weights(ckpt_path: PathLike, out_path: PathLike, extra_metadata: Mapping[str, Any] | None = None,
                   gains: Mapping[int, Mapping[str, float]] | None = None, overwrite: bool = False) -> Path:
    """Turn a checkpoint (or weights file) into small float32 ``.safetensors`` weights with their architecture.

    Parameters
    ----------
    ckpt_path : str or os.PathLike
        A Lightning checkpoint from ``train.py`` or an existing weights file.
    out_path : str or os.PathLike
        Where to write (atomically).
    extra_metadata : mapping, optional
        Free-form notes stored as strings (non-strings as JSON), e.g. data, steps, licences.
    gains : mapping, optional
        Measured gain over bicubic per scale, ``{2: {"psnr": 0.8, "ssim": 0.004}, ...}`` (``check_gains``);
        ``enhance`` warns where the PSNR gain is not positive. Defaults to the gains the input file already carries.
    overwrite : bool
        Replace an existing ``out_path``.

    Raises AFMFileError (OutputExistsError where ``out_path`` exists) and InputError for unusable ``gains``.
    """
    src = load_model(ckpt_path)
    out = Path(out_path)
    check_destination(out, overwrite)
    clash = sorted(set(extra_metadata or {}) & set(_RESERVED))
    if clash:
        raise AFMFileError(out, f"extra_metadata may not set the reserved keys {clash}")
    info = src.info
    try:
        chosen = info.gains if gains is None else check_gains(gains)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if set(chosen) - set(info.scales):
        raise InputError(f"gains for scales {sorted(set(chosen) - set(info.scales))}, but the model was trained "
                         f"for {list(info.scales)}")
    meta = {**info.extra,
            **{k: v if isinstance(v, str) else json.dumps(v) for k, v in (extra_metadata or {}).items()},
            "format": FORMAT_TAG, "arch": info.arch, "depth": str(info.depth), "width": str(info.width),
            "channels": str(info.channels), "scales": json.dumps(list(info.scales))}
    if chosen:
        meta["gains"] = json.dumps({str(s): g for s, g in sorted(chosen.items())})
    tensors = {k: v.detach().float().contiguous() for k, v in src.net.state_dict().items()}
    write_atomically({out: lambda tmp: save_file(tensors, str(tmp), metadata=meta)}, overwrite)
    return out
