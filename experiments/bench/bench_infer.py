"""Inference speed and memory, measured in one run: afm_sr.enhance vs the bare conv stack, fp32 vs bf16, peak RSS.

Usage: ``python experiments/bench/bench_infer.py [--repeats 2] [--rss-depth 3]``

1. 512x512 output at x4 (a 128x128 scan) through ``afm_sr.enhance`` vs the same network's own forward
   ``net(lr, 4)`` on a 1x1x128x128 tensor (ratio: the cost of normalization, bicubic, tiling and meters), for the
   shipped network and for the paper's VDSR 20 x 64, through the network contract only.
2. The same enhance call with ``precision="bf16"`` vs fp32 (ratio); the bare forward under ``torch.compile``
   (inductor) vs eager, with its compile time.
3. Peak resident memory of a 4096x4096 scan enhanced x2 (8192x8192 output, tiled), in a fresh subprocess.

VDSR's weights are random (speed depends on the architecture only): depth 20, width 64 as in the paper. On a
small CPU the 4096^2 run at depth 20 takes tens of minutes, so the RSS run uses ``--rss-depth`` layers of
width 64: the memory that matters (64-channel activations of a batch of tiles, input and output arrays)
does not grow with depth, since inference keeps only a layer's input and output alive.
"""

from __future__ import annotations

import argparse
import platform
import resource
import subprocess
import sys
import time

import numpy as np
import torch
from common import as_model, best_of, cpu_name

from afm_sr.infer import SRModel, enhance, load_model
from afm_sr.models import VDSR


def random_model(depth: int, width: int = 64) -> SRModel:
    """A VDSR with random (He-initialized, seeded) weights, wrapped as afm_sr.infer loads one."""
    torch.manual_seed(0)
    return as_model(VDSR(depth, width))


def vm_rss_mb(key: str = "VmRSS") -> float:
    """This process's resident (``VmRSS``) or peak resident (``VmHWM``) memory in MiB, from /proc."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_child(depth: int, size: int, tile: int, batch: int | None) -> None:
    """Enhance a size x size scan x2 on the CPU; print the RSS before (imports + input) and the peak after."""
    model = random_model(depth)
    scan = np.random.default_rng(0).standard_normal((size, size)) * 1e-9
    before = vm_rss_mb()
    start = time.perf_counter()
    out = enhance(scan, scale=2, model=model, pixel_size=1e-8, device="cpu", tile=tile, batch=batch)
    print(f"{before:.0f} {vm_rss_mb('VmHWM'):.0f} {time.perf_counter() - start:.1f} {out.shape[0]}x{out.shape[1]}")


def main() -> None:
    """Run the three measurements and print one small table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rss-depth", type=int, default=3, help="depth of the width-64 net in the RSS run")
    parser.add_argument("--rss-size", type=int, default=4096)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--batch", type=int, default=0, help="tiles per forward pass (0: enhance's default)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        rss_child(args.rss_depth, args.rss_size, args.tile, args.batch or None)
        return

    print(f"# torch {torch.__version__}, {cpu_name()}, {torch.get_num_threads()} threads, Python "
          f"{platform.python_version()}")
    scan = np.random.default_rng(0).standard_normal((128, 128)) * 1e-9
    x = torch.randn(1, 1, 128, 128)
    for name, model in (("shipped network", load_model()), ("VDSR depth 20 width 64", random_model(20))):
        with torch.inference_mode():
            bare = best_of(lambda model=model: model.net(x, 4), args.repeats)
        fp32 = best_of(lambda model=model: enhance(scan, 4, model, pixel_size=1e-8, device="cpu"), args.repeats)
        bf16 = best_of(lambda model=model: enhance(scan, 4, model, pixel_size=1e-8, device="cpu", precision="bf16"),
                       args.repeats)
        print(f"512x512 at x4, {name}, best of {args.repeats}:")
        print(f"  bare net(lr, 4) fp32        {bare:7.2f} s")
        print(f"  afm_sr.enhance fp32         {fp32:7.2f} s   enhance / bare = {fp32 / bare:.2f}")
        print(f"  afm_sr.enhance bf16         {bf16:7.2f} s   fp32 / bf16    = {fp32 / bf16:.2f}")
        if not args.no_compile:
            compiled = torch.compile(model.net)
            with torch.inference_mode():
                start = time.perf_counter()
                compiled(x, 4)
                first = time.perf_counter() - start
                fast = best_of(lambda compiled=compiled: compiled(x, 4), args.repeats)
            print(f"  bare, torch.compile         {fast:7.2f} s   eager / compiled = {bare / fast:.2f} "
                  f"(first call, compiling: {first:.0f} s)")

    cmd = [sys.executable, __file__, "--child", "--rss-depth", str(args.rss_depth), "--rss-size",
           str(args.rss_size), "--tile", str(args.tile), "--batch", str(args.batch)]
    before, peak_self, seconds, shape = subprocess.run(cmd, capture_output=True, text=True, check=True
                                                       ).stdout.split()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    print(f"{args.rss_size}x{args.rss_size} at x2 -> {shape}, tiled ({args.tile} px tiles, batch "
          f"{args.batch or 'default'}), VDSR depth {args.rss_depth} width 64, fp32, CPU, subprocess:")
    print(f"  RSS before enhance (torch + model + input) {float(before):6.0f} MiB")
    print(f"  peak RSS (getrusage children)              {peak:6.0f} MiB   (VmHWM {float(peak_self):.0f} MiB)")
    print(f"  time                                       {float(seconds):6.1f} s")


if __name__ == "__main__":
    main()
