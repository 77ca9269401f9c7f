"""Synthetic material generation speed vs what the training step consumes, measured side by side.

python experiments/bench/bench_materials.py [--sizes 256 512] [--repeat 3]

Prints images/s per material (instrument artefacts on, configs from conf/material/) and the ratio to the
default training step's consumption (VDSR depth 20 x 64, batch 64 of 41x41, fp32), counted two ways:
`strict` (every patch from a freshly generated image) and `tiled` (a fresh image per non-overlapping
41x41 patches it holds). Ratios >= 1 mean generation on the fly would not starve training.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from afm_sr.materials import SyntheticMaterial
from afm_sr.models import VDSR

CONF = Path(__file__).resolve().parents[2] / "conf"
MATERIALS = ["ceramic", "nanoparticles", "oxide_crystals", "thin_film", "polymer_fibrils", "polymer_lamellae",
             "bone", "nacre", "single_crystal"]


def cpu_name() -> str:
    """CPU model from lscpu (or platform)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration, subprocess.CalledProcessError):
        return platform.processor() or "unknown"


def material(name: str, n_px: int) -> SyntheticMaterial:
    """The material exactly as training builds it, at ``n_px`` pixels."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["dataset=mono", f"material@dataset.materials.ceramic={name}"])
    mat = instantiate(cfg.dataset.materials.ceramic)
    mat.n_px = n_px
    return mat


def images_per_s(mat: SyntheticMaterial, repeat: int) -> float:
    """Median rate over ``repeat`` images (after one warm-up)."""
    mat.image(0)
    times = []
    for i in range(1, repeat + 1):
        t = time.perf_counter()
        mat.image(i)
        times.append(time.perf_counter() - t)
    return 1.0 / float(np.median(times))


def train_patches_per_s(steps: int = 3) -> float:
    """Patches/s of a plain VDSR training step (depth 20, width 64, batch 64, 41x41, SGD)."""
    net = VDSR()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(64, 1, 41, 41), torch.randn(64, 1, 41, 41)
    times = []
    for _ in range(steps + 1):
        t = time.perf_counter()
        opt.zero_grad()
        (net(x) - y).pow(2).mean().backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return 64 / float(np.median(times[1:]))


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}, threads {torch.get_num_threads()}, torch {torch.__version__}")
    consume = train_patches_per_s()
    print(f"training step consumes {consume:.1f} patches/s (VDSR 20x64, batch 64 of 41x41, fp32)")
    print("| material | px | images/s | ratio strict | ratio tiled |")
    print("|---|---|---|---|---|")
    for name in MATERIALS:
        for n_px in args.sizes:
            rate = images_per_s(material(name, n_px), args.repeat)
            tiles = (n_px // 41) ** 2
            print(f"| {name} | {n_px} | {rate:.1f} | {rate / consume:.2f} | {rate * tiles / consume:.1f} |")


if __name__ == "__main__":
    main()
