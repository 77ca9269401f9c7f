"""What integrity checks cost at a run's start: cache-entry CRC-32s and checkpoint (zip) CRC-32s.

python experiments/bench/bench_integrity.py [--mb 256] [--train ../shared/afm-train]

Prints MB/s of each check beside the alternatives, and their share of a run's start measured in the same run:
the imports of train.py (a fresh interpreter) plus the data module's setup from a warm cache, with and without
the checksums. Numbers go into experiments/bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import torch
from common import REPO, best_of, cpu_name

import afm_sr.data.cache as cache
from afm_sr.data import AFMDataModule
from afm_sr.degrade import BicubicDegradation
from afm_sr.materials.folder import FolderMaterial
from afm_sr.models import VDSR
from afm_sr.models.checkpoint import check_archive


def hashes(mb: int) -> None:
    """MB/s of CRC-32 (zlib: the cache's and zip's checksum) beside BLAKE2b and SHA-256 over ``mb`` MB in memory."""
    data = np.random.default_rng(0).standard_normal(mb << 18, dtype=np.float32)  # mb MB of float32
    for name, fn in (("crc32 (zlib: cache, zip)", lambda: zlib.crc32(data)),
                     ("blake2b-128", lambda: hashlib.blake2b(data, digest_size=16).digest()),
                     ("sha256", lambda: hashlib.sha256(data).digest())):
        print(f"{name:28s} {mb / best_of(fn, 3):8.0f} MB/s over {mb} MB")


def checkpoints(mb: int, folder: Path) -> None:
    """check_archive (every member's CRC-32) vs torch.load(weights_only=True) of the same checkpoint file."""
    net = VDSR(depth=20, width=64)
    opt = torch.optim.Adam(net.parameters())
    net(torch.zeros(1, 1, 8, 8), 2).sum().backward()
    opt.step()  # Adam state: two more tensors per weight, as in a real last.ckpt
    for label, state in (("VDSR 20x64 + Adam state", {"state_dict": net.state_dict(), "opt": opt.state_dict()}),
                         (f"{mb} MB of tensors", {"state_dict": {"w": torch.zeros(mb << 18)}})):
        path = folder / "bench.ckpt"
        torch.save(state, path)
        size = path.stat().st_size / 1e6
        check = best_of(lambda p=path: check_archive(p), 3)
        load = best_of(lambda p=path: torch.load(p, map_location="cpu", weights_only=True), 3)
        print(f"{label:28s} {size:7.1f} MB: check_archive {check * 1e3:7.1f} ms ({size / check:5.0f} MB/s), "
              f"torch.load {load * 1e3:7.1f} ms, check / load {check / load:.2f}")


def imports() -> float:
    """Seconds a fresh interpreter takes to import what train.py imports (the fixed part of a run's start)."""
    code = "import time; t = time.perf_counter(); import afm_sr.entry; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return float(out.stdout.split()[-1])


def real_cache(train: Path, folder: Path) -> None:
    """Setup of the afm-train folder: building the entry, then from the warm cache with and without checksums."""
    def setup() -> AFMDataModule:
        dm = AFMDataModule({"afm_train": FolderMaterial("afm_train", str(train), glob="*.npy")},
                           BicubicDegradation(), cache_dir=str(folder / "cache"))
        dm.setup("fit")
        return dm

    start = time.perf_counter()
    setup()
    build = time.perf_counter() - start
    (entry,) = (p for p in (folder / "cache").iterdir() if not p.name.startswith("."))
    size = (entry / "arrays.f32").stat().st_size / 1e6
    verified = best_of(setup, 3)
    problem = cache._problem
    cache._problem = lambda index, flat: None  # the same setup without verifying the checksums
    try:
        unverified = best_of(setup, 3)
    finally:
        cache._problem = problem
    start_s = imports()
    check = verified - unverified
    print(f"afm-train entry: {size:.0f} MB; first setup (read, prepare, write) {build:.2f} s; warm setup "
          f"{verified:.3f} s with checksums, {unverified:.3f} s without: {check:.3f} s ({size / max(check, 1e-9):.0f} "
          f"MB/s incl. page cache)")
    print(f"run start = imports {start_s:.2f} s + warm setup {verified:.3f} s; checksums' share "
          f"{check / (start_s + verified):.1%}; at 300 MB they would take ~{300 / size * check:.2f} s "
          f"({300 / size * check / (start_s + 300 / size * verified):.1%})")


def main() -> None:
    """Run every measurement and print it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="size of the synthetic data and checkpoint (MB)")
    parser.add_argument("--train", type=Path, default=REPO.parent / "shared" / "afm-train")
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.ERROR)
    print(f"{cpu_name()}, torch {torch.__version__}, Python {sys.version.split()[0]}")
    hashes(args.mb)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoints(args.mb, Path(tmp))
        if args.train.is_dir():
            real_cache(args.train, Path(tmp))
        else:
            print(f"{args.train} not found: no real-cache measurement")


if __name__ == "__main__":
    main()
