"""Data pipeline: patches/s the DataModule supplies vs what training consumes, and the prepared-image cache.

python experiments/bench/bench_data.py [--batches 60] [--copies 8]

1. Supply vs demand, one run. Demand: patches/s of the training step (Lightning ``Trainer.fit``) for the
   CPU presets' model (10 x 32, batch 32) and the paper's (20 x 64, batch 64), fp32 and bf16-mixed.
   Supply: patches/s that ``train_dataloader()`` yields with 0, 1 and 2 workers, for the synthetic
   ``multi`` dataset and for the real ``afm_train`` maps (conf/dataset/*.yaml as training composes them).
2. Cache: a folder of real instrument files (the readable files of ../shared/afm-samples, each copied
   ``--copies`` times so parsing costs what a large folder costs) trained for three epochs, twice:
   first run (parse, level, degrade, write the cache), second run (memory-map the cache). Prints the
   time of each epoch including ``setup``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

import torch
from common import CONF, REPO, cpu_name, lightning, step_args
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import open_dict

from afm_sr.data import AFMDataModule

SHARED = REPO.parent / "shared"


def datamodule(dataset: str, cache_dir: str | None, overrides: tuple[str, ...] = ()) -> AFMDataModule:
    """The data module exactly as ``train.py dataset=<dataset>`` builds it, with the given cache folder."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"dataset={dataset}", *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.root_dir = str(REPO)
        cfg.paths.shared_dir = str(SHARED)
        cfg.dataset.cache_dir = cache_dir
    return instantiate(cfg.dataset, _convert_="all")


def supply(dm: AFMDataModule, workers: int, batches: int) -> float:
    """Patches/s from ``train_dataloader()`` with ``workers`` workers (worker start-up excluded)."""
    dm.num_workers = workers
    dm.patches_per_epoch = dm.batch_size * (batches + 5 * max(workers, 1))
    it = iter(dm.train_dataloader())
    for _ in range(5 * max(workers, 1)):  # start the workers and fill their prefetch queues
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * dm.batch_size / (time.perf_counter() - start)


def epochs(folder: Path, cache: Path, n_epochs: int, patches: int) -> list[float]:
    """Seconds per epoch (the first includes ``setup``) of a fresh data module over ``folder``."""
    overrides = (f"dataset.materials.mine.path={folder}", f"dataset.patches_per_epoch={patches}",
                 "dataset.batch_size=64")
    dm = datamodule("folder", str(cache), overrides)
    out = []
    for k in range(n_epochs):
        start = time.perf_counter()
        if k == 0:
            dm.setup("fit")
        for _ in dm.train_dataloader():
            pass
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    """Print demand, supply per dataset and workers, and the cache's epoch times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    logging.getLogger("afm_sr").setLevel(logging.ERROR)  # the unreadable sample files would warn per copy
    print(f"CPU: {cpu_name()}, threads {torch.get_num_threads()}, torch {torch.__version__}")

    demand = {}
    for depth, width, batch in ((10, 32, 32), (20, 64, 64)):
        step = step_args(depth=depth, width=width, batch=batch, steps=args.steps)
        for precision in ("32-true", "bf16-mixed"):
            demand[f"{depth}x{width} batch {batch} {precision}"] = lightning(step, precision)
    for name, rate in demand.items():
        print(f"demand  {name:28s} {rate:8.1f} patches/s")
    need = max(demand.values())

    sets = {"multi (9 synthetic)": "multi"}
    if (SHARED / "afm-train" / "index.csv").is_file():
        sets["real (113 afm-train maps, cached)"] = "real"
    with tempfile.TemporaryDirectory() as tmp:
        for label, dataset in sets.items():
            start = time.perf_counter()
            dm = datamodule(dataset, tmp)
            dm.setup("fit")
            print(f"setup   {label:36s} {time.perf_counter() - start:6.1f} s")
            for workers in (0, 1, 2):
                rate = supply(dm, workers, args.batches)
                print(f"supply  {label:36s} workers {workers}: {rate:9.0f} patches/s = {rate / need:6.1f} x the "
                      f"fastest demand")

    samples = SHARED / "afm-samples"
    if not samples.is_dir():
        print(f"cache: skipped, {samples} is absent")
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder, cache = Path(tmp) / "scans", Path(tmp) / "cache"
        folder.mkdir()
        files = [p for p in sorted(samples.iterdir()) if p.is_file() and p.suffix.lower() not in (".md", ".json")]
        for j in range(args.copies):
            for p in files:
                shutil.copy(p, folder / f"c{j}_{p.name}")
        n = len(list(folder.iterdir()))
        first = epochs(folder, cache, 3, 6400)
        later = epochs(folder, cache, 3, 6400)
        mib = sum(p.stat().st_size for p in cache.rglob("*")) / 2**20
        print(f"cache   {n} instrument files ({args.copies} copies of {len(files)}), 6400 patches per epoch; "
              f"cache {mib:.0f} MiB")
        print("cache   run 1 (no cache) epoch s: " + ", ".join(f"{t:.1f}" for t in first))
        print("cache   run 2 (cached)   epoch s: " + ", ".join(f"{t:.1f}" for t in later))
        print(f"cache   first epoch / later epoch (run 1): {first[0] / min(first[1:]):.1f}; "
              f"run 1 / run 2 first epoch: {first[0] / later[0]:.1f}")


if __name__ == "__main__":
    main()
