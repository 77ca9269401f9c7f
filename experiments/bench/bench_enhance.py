"""``afm_sr.enhance`` against the shipped network's own forward, side by side in one process (issue 23).

Usage: ``python experiments/bench/bench_enhance.py [--sizes 256 1024] [--scales 2 4 8] [--threads 1]``

For each input size, scale and precision (fp32; bf16 where the CPU has bf16 units, avx512_bf16 or amx_bf16 in
/proc/cpuinfo): the bare forward ``net(z, s)`` of the packaged model on the same z-scored tensor ``enhance``
makes (one call, no tiles; as loaded and channels-last, the faster counts), ``enhance(lr, scale=s,
adapt=False)`` with its self-check, without it, and the self-check alone (as ``enhance`` runs it, and on the
whole scan), interleaved in rounds (each keeps its fastest round). Ratios are enhance / the faster bare
forward. Where the bare forward's fp32 activations do not fit the memory limit (1024 px at x8 here: ~19 GB; the
same rule for bf16, whose single 9 GB call ran past 15 minutes), the bare time is that of its four 512 px
quadrants (the network's cost is linear in pixels; said in the row). Everything through the network contract
only (``net(lr, s)``).
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from common import best_of, cpu_name

from afm_sr.infer import SRModel, enhance, load_model
from afm_sr.infer import adapt as own
from afm_sr.infer.pipeline import SELF_CHECK_SHARE
from afm_sr.infer.tiling import activation_bytes
from afm_sr.io.budget import headroom
from afm_sr.models import SRNet
from afm_sr.preprocess import fit_normalization


def bf16_units() -> str:
    """The CPU's bf16 flags (avx512_bf16, amx_bf16) or '' where it has none."""
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
        flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    return " ".join(sorted({f for f in flags if f in {"avx512_bf16", "amx_bf16"}}))


def surface(n: int, seed: int = 0) -> np.ndarray:
    """A rough random height map of n x n px in meters (a few nm, on a 1 um offset)."""
    rng = np.random.default_rng(seed)
    rough = np.cumsum(np.cumsum(rng.standard_normal((n, n)), 0), 1)
    return 1e-6 + 1e-9 * (rough - rough.mean()) / rough.std()


def bare_calls(net: SRNet, z: torch.Tensor, scale: int) -> tuple[list[Callable[[], object]], str]:
    """The bare forward as loaded and channels-last (on the four quadrants where the whole does not fit)."""
    fits = activation_bytes(net, scale, torch.float32) * z.numel() * scale * scale < headroom()  # one rule for both
    parts = [z] if fits else [z[..., y:y + z.shape[-2] // 2, x:x + z.shape[-1] // 2]
                              for y in (0, z.shape[-2] // 2) for x in (0, z.shape[-1] // 2)]
    last = copy.deepcopy(net).to(memory_format=torch.channels_last)

    def run(model: SRNet, fmt: torch.memory_format) -> None:
        with torch.inference_mode():
            for p in parts:
                model(p.contiguous(memory_format=fmt), scale)

    return [partial(run, net, torch.contiguous_format), partial(run, last, torch.channels_last)], (
        "" if fits else " (4 quadrants)")


def row(model: SRModel, net: SRNet, img: np.ndarray, z: torch.Tensor, s: int, precision: str, repeats: int) -> str:
    """One table row: bare forward, enhance with and without the self-check, the self-check alone.

    The variants run interleaved, ``repeats`` rounds, and each keeps its fastest round, so a load that changes
    during the row weighs on all of them alike.
    """
    bares, note = bare_calls(net, z, s)
    run = partial(enhance, img, scale=s, model=model, adapt=False, device="cpu", precision=precision)
    lines = min(1.0, SELF_CHECK_SHARE * s * s)
    check_run = partial(own.self_check, model, img, s, device="cpu", precision=precision)
    calls = [*bares, run, partial(run, self_check=False), partial(check_run, lines=lines)]
    calls += [check_run] if lines < 1 else []
    best = [float("inf")] * len(calls)
    for _ in range(repeats):
        best = [min(b, best_of(call, 1, warmup=False)) for b, call in zip(best, calls, strict=True)]
    loaded, last, full, quiet, check = best[:5]
    whole = best[5] if lines < 1 else check
    reference = min(loaded, last)
    return (f"| {img.shape[0]} | x{s} | {precision} | {loaded:7.2f} {last:7.2f}{note} | {full:.2f} | "
            f"{full / reference:.2f} | {quiet:.2f} | {quiet / reference:.2f} | {check:.2f} / {whole:.2f} |")


def main() -> None:
    """Print one row per size, scale and precision, and the machine's load."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--precisions", nargs="+", default=None, help="default: 32, and bf16 where the CPU has it")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds (each variant keeps its fastest)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    units = bf16_units()
    precisions = args.precisions or (["32", "bf16"] if units else ["32"])
    print(f"# torch {torch.__version__}, {cpu_name()}, {args.threads} thread(s), bf16 units: {units or 'none'}")
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"# load before: {uptime}")
    model = load_model()
    enhance(surface(64), scale=2, model=model, adapt=False, device="cpu")  # warm-up: imports, allocator, probe
    print("| px | scale | precision | bare as loaded / channels-last s | enhance s | ratio | no self-check s | ratio "
          "| self-check s (as run / whole scan) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for precision in precisions:
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        net = copy.deepcopy(model.net).to(dtype)
        for size in args.sizes:
            img = surface(size)
            z = torch.from_numpy(fit_normalization(img).apply(img).astype(np.float32))[None, None].to(dtype)
            for s in args.scales:
                print(row(model, net, img, z, s, precision, args.repeats), flush=True)
    print(f"# load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
