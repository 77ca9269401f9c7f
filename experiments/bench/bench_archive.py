"""An archive through one ``afm-sr enhance`` call against the sum of the network's own forwards on its files.

Usage: ``python experiments/bench/bench_archive.py [--files 100] [--px 128] [--scale 4] [--threads 1]``

Writes ``--files`` random height maps of ``--px`` px as .npy into a temp folder, times the shipped network's bare
forward ``net(z, s)`` on each file's z-scored tensor (the channels-last copy ``enhance`` runs, one call per file)
before and after (their mean is the reference, so a load that changes during the run counts on both sides),
and between them one in-process ``afm-sr enhance 'folder/*.npy' -o out --scale S --no-adapt`` (reading,
self-check, bicubic, .gwy writing, summary table included) and prints wall time / summed bare time (goal: <= 1.1).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import cpu_name

from afm_sr.cli import main as afm_sr_main
from afm_sr.infer import load_model
from afm_sr.preprocess import fit_normalization


def bare_sum(net: torch.nn.Module, maps: list[np.ndarray], scale: int) -> float:
    """Seconds of ``net(z, scale)`` summed over the maps (one warm-up call first)."""
    total = 0.0
    with torch.inference_mode():
        net(torch.zeros(1, 1, *maps[0].shape).contiguous(memory_format=torch.channels_last), scale)
        for heights in maps:
            z = torch.from_numpy(fit_normalization(heights).apply(heights).astype(np.float32))[None, None]
            start = time.perf_counter()
            net(z.contiguous(memory_format=torch.channels_last), scale)
            total += time.perf_counter() - start
    return total


def main() -> None:
    """Make the files, time the bare forwards, then the one enhance call; print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--px", type=int, default=128)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"# torch {torch.__version__}, {cpu_name()}, {args.threads} thread(s); {uptime}")
    rng = np.random.default_rng(0)
    model = load_model()
    net = model.prepared(torch.device("cpu"), torch.float32)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "scans"
        folder.mkdir()
        maps = [1e-9 * np.cumsum(rng.standard_normal((args.px, args.px)), 0) for _ in range(args.files)]
        for i, heights in enumerate(maps):
            np.save(folder / f"scan{i:04d}.npy", heights)
        bare_before = bare_sum(net, maps, args.scale)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = afm_sr_main(["enhance", str(folder / "*.npy"), "-o", str(Path(tmp) / "out"), "--scale",
                                str(args.scale), "--no-adapt", "--device", "cpu", "--pixel-size", "1e-8"])
        wall = time.perf_counter() - start
        bare_after = bare_sum(net, maps, args.scale)
    bare = (bare_before + bare_after) / 2
    print(f"sum of bare forwards before / after the enhance call: {bare_before:.1f} / {bare_after:.1f} s")
    print(f"{args.files} files of {args.px} px at x{args.scale} (exit {code}): one afm-sr enhance call {wall:.1f} s, "
          f"sum of bare forwards {bare:.1f} s, ratio {wall / bare:.2f}")
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"# after: {uptime}")


if __name__ == "__main__":
    main()
