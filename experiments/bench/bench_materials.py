"""Synthetic material generation speed vs what the training step consumes, measured side by side.

python experiments/bench/bench_materials.py [--sizes 256 512] [--repeat 3]

Prints images/s per material (instrument artefacts on, configs from conf/material/) and the ratio to the
default training step's consumption (VDSR depth 20 x 64, batch 64 of 41x41, fp32), counted two ways:
`strict` (every patch from a freshly generated image) and `tiled` (a fresh image per non-overlapping
41x41 patches it holds). Ratios >= 1 mean generation on the fly would not starve training.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import CONF, cpu_name, lightning, step_args
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from afm_sr.materials import SyntheticMaterial

MATERIALS = ["ceramic", "nanoparticles", "oxide_crystals", "thin_film", "polymer_fibrils", "polymer_lamellae",
             "bone", "nacre", "single_crystal"]


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


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}, threads {torch.get_num_threads()}, torch {torch.__version__}")
    consume = lightning(step_args(steps=3))
    print(f"training step consumes {consume:.1f} patches/s (VDSR 20x64, batch 64 of 41 px HR patches at x2, fp32)")
    print("| material | px | images/s | ratio strict | ratio tiled |")
    print("|---|---|---|---|---|")
    for name in MATERIALS:
        for n_px in args.sizes:
            rate = images_per_s(material(name, n_px), args.repeat)
            tiles = (n_px // 41) ** 2
            print(f"| {name} | {n_px} | {rate:.1f} | {rate / consume:.2f} | {rate * tiles / consume:.1f} |")


if __name__ == "__main__":
    main()
