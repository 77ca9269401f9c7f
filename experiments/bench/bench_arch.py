"""Enhance time per architecture, side by side in one run: MultiScaleResNet vs VDSR 20x64 and 16x32.

Usage: ``python experiments/bench/bench_arch.py [--size 1024] [--scales 4 8] [--device auto] [--precision 32]``

Each network has random weights (speed depends on the architecture only) and runs through ``afm_sr.enhance``
exactly as a user's scan would (normalization, tiling, bicubic of the heights, meters), on a ``size`` x ``size``
scan. Prints seconds per call (best of ``--repeats`` after a warm-up), output megapixels per second and the
ratio of each VDSR to MultiScaleResNet, plus the multiply-accumulates per output pixel counted from the layers.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from common import as_model, best_of, cpu_name  # enhance returns host arrays, so its timing needs no CUDA synchronize

from afm_sr.infer import enhance, resolve_device
from afm_sr.models import VDSR, MultiScaleResNet, SRNet


def macs_per_output_pixel(net: SRNet, scale: int, lr: int = 32) -> float:
    """Multiply-accumulates of every conv per output pixel, counted with forward hooks on a ``lr`` px input."""
    total = 0

    def hook(mod: torch.nn.Conv2d, _: object, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1] // mod.groups

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.inference_mode():
        net.residual(torch.zeros(1, 1, lr, lr), scale)
    for h in handles:
        h.remove()
    return total / (lr * scale) ** 2


def main() -> None:
    """Time enhance for each architecture and scale; print a table with ratios to MultiScaleResNet."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="input scan pixels per side")
    parser.add_argument("--scales", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="32")
    parser.add_argument("--blocks", type=int, default=12, help="MultiScaleResNet residual blocks")
    args = parser.parse_args()
    torch.manual_seed(0)
    nets = {f"MultiScaleResNet {args.blocks}x64": MultiScaleResNet(args.blocks, 64, 32),
            "VDSR 20x64": VDSR(20, 64), "VDSR 16x32": VDSR(16, 32)}
    dev = resolve_device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_name()
    print(f"# torch {torch.__version__}, device {dev} ({name}), {torch.get_num_threads()} threads, precision "
          f"{args.precision}, scan {args.size}x{args.size}, best of {args.repeats}")
    scan = np.random.default_rng(0).standard_normal((args.size, args.size)) * 1e-9
    print("| network | scale | MAC / output px | seconds | output Mpx/s | time / MultiScaleResNet |")
    print("|---|---|---|---|---|---|")
    for s in args.scales:
        base = None
        for label, net in nets.items():
            model = as_model(net)
            secs = best_of(lambda model=model, s=s: enhance(scan, s, model, pixel_size=1e-8, device=dev,
                                                       precision=args.precision), args.repeats)
            base = base or secs
            mpx = (args.size * s) ** 2 / secs / 1e6
            print(f"| {label} | x{s} | {macs_per_output_pixel(net, s) / 1e3:.0f} k | {secs:.2f} | {mpx:.2f} | "
                  f"{secs / base:.2f} |", flush=True)


if __name__ == "__main__":
    main()
