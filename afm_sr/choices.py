"""What a user may choose when running a model: scale factors, devices and convolution precisions.

Plain tables without torch, so ``afm-sr``'s argument parser (and ``afm-sr info``) offers them without importing
it; ``afm_sr.degrade`` and ``afm_sr.infer`` check values against the same tables (``check_scale``: the
Gwyddion plug-in refuses too small an image before it imports torch).
"""

from __future__ import annotations

from afm_sr.errors import InputError

#: Scale factors a model is trained for and run at (the paper's x2, x4, x8).
SUPPORTED_SCALES: tuple[int, ...] = (2, 4, 8)
#: Device names (besides ``cuda:N``): ``auto`` takes CUDA where PyTorch sees a GPU.
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
#: Convolution precision name -> the ``torch`` dtype it runs in (named, so this module needs no torch).
PRECISIONS: dict[str, str] = {"32": "float32", "bf16": "bfloat16"}
#: How ``adapt`` degrades a scan into its own training pairs (``afm_sr.infer.adapt.pair_degradation``).
ADAPT_PAIRS: tuple[str, ...] = ("bicubic", "trained")
#: How the self-check degrades a scan into its own pairs (``afm_sr.infer.adapt.check_degradation``); the first is
#: the default.
CHECK_PAIRS: tuple[str, ...] = ("instrument", "bicubic")


def check_scale(scale: int, shape: tuple[int, ...]) -> int:
    """Validate a scale factor for an image of ``shape``; raise InputError with what to do."""
    if int(scale) != scale or int(scale) not in SUPPORTED_SCALES:
        raise InputError(f"scale {scale!r} is not supported; choose one of {list(SUPPORTED_SCALES)}")
    if min(shape[-2:]) < 2 * int(scale):
        raise InputError(f"a {shape[-2]}x{shape[-1]} image is too small for scale {scale}: "
                         f"need at least {2 * int(scale)} px per side")
    return int(scale)
