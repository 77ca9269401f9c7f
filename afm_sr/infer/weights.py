"""Loading and exporting trained weights for inference: the packaged default, ``ModelInfo``, ``export_weights``.

The file formats themselves live in ``afm_sr.models.checkpoint`` (their one owner).
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from afm_sr.atomic import check_destination, write_atomically
from afm_sr.choices import SUPPORTED_SCALES
from afm_sr.degrade.build import build_degradation
from afm_sr.errors import AFMFileError, InputError
from afm_sr.models import SRNet
from afm_sr.models.checkpoint import (
    FORMAT_TAG,
    RECORD_VERSION,
    RESERVED,
    ArchRecord,
    build_network,
    read_weights,
    weights_crc,
)

PathLike = str | os.PathLike
#: The name ``model="default"`` resolves to, inside the installed package.
DEFAULT_WEIGHTS = ("weights", "default.safetensors")


@dataclass(frozen=True)
class ModelInfo:
    """What a weights file says about its network.

    Attributes
    ----------
    record : the architecture (``_target_``, kwargs, scales the model was trained for).
    gains : measured gain over bicubic per scale, ``{scale: {"psnr": dB, "ssim": delta}}`` (may be empty).
    source : the file the weights came from (``default`` for the packaged model).
    extra : any further metadata strings of an exported file (data, steps, licence notes, ...).
    degradation : the config node (``_target_`` plus arguments) of the degradation the network trained on, as the
        file records it (``afm_sr.degrade.build.build_degradation`` builds it); None where it records none.
    """

    record: ArchRecord
    gains: dict[int, dict[str, float]] = field(default_factory=dict)
    source: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    degradation: dict[str, Any] | None = None

    @property
    def scales(self) -> tuple[int, ...]:
        """Scale factors the model was trained for."""
        return self.record.scales

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
    """A network (``afm_sr.models.SRNet``) in eval mode on the CPU in float32, with what its file says about it.

    Treat it as read-only once used: ``prepared`` keeps one copy per device and precision for every later call.
    """

    net: SRNet
    info: ModelInfo
    _copies: dict[tuple[str, torch.dtype], SRNet] = field(default_factory=dict, repr=False, compare=False)

    def prepared(self, device: torch.device, dtype: torch.dtype) -> SRNet:
        """An eval copy of the network on ``device`` in ``dtype``, channels-last, made once per (device, dtype).

        The network itself stays float32 on the CPU, so a bf16 run never rounds the weights of later calls.
        """
        key = (str(device), dtype)
        if key not in self._copies:
            net = copy.deepcopy(self.net).to(device=device, dtype=dtype, memory_format=torch.channels_last)
            self._copies[key] = net.eval()
        return self._copies[key]


def default_weights_path() -> Path:
    """Where the packaged pretrained model lives (whether or not it is installed)."""
    return Path(str(resources.files("afm_sr").joinpath(*DEFAULT_WEIGHTS)))


#: Weights files loaded in this process, by (path, mtime, size): a folder of scans loads and checks its model once.
_LOADED: OrderedDict[tuple[str, int, int], SRModel] = OrderedDict()
#: How many different weights files stay loaded.
LOADED_MAX = 4


def load_model(model: PathLike | SRModel = "default") -> SRModel:
    """Build the network a weights file describes and load its tensors (safely, never unpickling objects).

    Once per process: a file already loaded (same path, modification time and size) is not read or checked again;
    each call returns its own copy of the network (a few ms), so a caller that changes its copy changes no other.

    Parameters
    ----------
    model : str, os.PathLike or SRModel
        ``"default"``, a path to a Lightning ``.ckpt`` or an exported ``.safetensors``, or an SRModel
        (returned as is, so callers can load once and enhance many files).

    Raises
    ------
    AFMFileError
        If the file is missing, corrupt, foreign, holds pickled objects, declares an architecture outside the
        allow-list or out of bounds, or its tensors do not match it; the message names the file.
    """
    if isinstance(model, SRModel):
        return model
    default = str(model) == "default"
    path = default_weights_path() if default else Path(model)
    if default and not path.is_file():
        raise AFMFileError(path, "no pretrained model is installed with this copy of afm-sr; pass "
                                 "--model PATH (model=PATH) to a checkpoint from train.py or to exported "
                                 ".safetensors weights")
    try:
        stat = path.stat()
    except OSError:
        stat = None
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size) if stat else None
    if key in _LOADED:
        _LOADED.move_to_end(key)
    else:
        weights = read_weights(path)
        info = ModelInfo(weights.record, weights.gains, "default" if default else str(path), weights.extra,
                         weights.degradation)
        loaded = SRModel(build_network(weights), info)
        if key is None:
            return loaded
        _LOADED[key] = loaded
        while len(_LOADED) > LOADED_MAX:
            _LOADED.popitem(last=False)
    return SRModel(copy.deepcopy(_LOADED[key].net), _LOADED[key].info)  # a copy: callers may change theirs


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
                   gains: Mapping[int, Mapping[str, float]] | None = None, overwrite: bool = False,
                   degradation: Mapping[str, Any] | None = None) -> Path:
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
    degradation : mapping, optional
        The config node of the degradation the network trained on (``conf/degradation/*.yaml`` resolved, e.g. for
        weights made by averaging); ``adapt``'s ``trained`` pairs use it. Defaults to what the input records (a
        train.py checkpoint: its run's ``degradation``); it must build (``build_degradation``).

    Raises AFMFileError (OutputExistsError where ``out_path`` exists) and InputError for unusable ``gains`` or
    ``degradation``.
    """
    src = load_model(ckpt_path)
    out = Path(out_path)
    check_destination(out, overwrite)
    clash = sorted(set(extra_metadata or {}) & set(RESERVED))
    if clash:
        raise AFMFileError(out, f"extra_metadata may not set the reserved keys {clash}")
    info = src.info
    try:
        chosen = info.gains if gains is None else check_gains(gains)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if degradation is not None:
        try:
            build_degradation(degradation)
        except ValueError as exc:
            raise InputError(f"degradation: {exc}") from None
    trained_on = info.degradation if degradation is None else dict(degradation)
    if set(chosen) - set(info.scales):
        raise InputError(f"gains for scales {sorted(set(chosen) - set(info.scales))}, but the model was trained "
                         f"for {list(info.scales)}")
    meta = {**info.extra,
            **{k: v if isinstance(v, str) else json.dumps(v) for k, v in (extra_metadata or {}).items()},
            "format": FORMAT_TAG, "version": str(RECORD_VERSION), "target": info.record.target,
            "kwargs": json.dumps(info.record.kwargs), "scales": json.dumps(list(info.record.scales))}
    if chosen:
        meta["gains"] = json.dumps({str(s): g for s, g in sorted(chosen.items())})
    if trained_on is not None:
        meta["degradation"] = json.dumps(trained_on)
    tensors = {k: v.detach().float().contiguous() for k, v in src.net.state_dict().items()}
    meta["crc32"] = weights_crc(tensors, meta)  # read_safetensors verifies it
    write_atomically({out: lambda tmp: save_file(tensors, str(tmp), metadata=meta)}, overwrite)
    return out
