"""Resolve the device and precision names of afm_sr.choices (what enhance, adapt and the CLI take) for torch."""

from __future__ import annotations

import torch

from afm_sr.choices import DEVICES, PRECISIONS
from afm_sr.errors import InputError


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
    dtype = getattr(torch, PRECISIONS[name])
    if dtype is torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InputError(f"precision bf16: the GPU {torch.cuda.get_device_name(device)} does not support bfloat16")
    return dtype
