"""What the benchmark scripts share: the machine's name, best-of timing, random models and the training step.

Every script here runs as ``python experiments/bench/<script>.py``, so Python puts this folder first on the
import path and ``from common import ...`` finds this module (as in experiments/materials).
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from afm_sr.infer import ModelInfo, SRModel
from afm_sr.models import VDSR, MultiScaleResNet, SRNet
from afm_sr.models.checkpoint import ArchRecord
from afm_sr.module import SRModule

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"
#: bench_train's options and what the other scripts' training steps default to: VDSR 20 x 64, x2, batch 64, CPU.
STEP_DEFAULTS = {"steps": 6, "arch": "vdsr", "depth": 20, "blocks": 12, "width": 64, "lr_patch": 24, "scale": 2,
                 "batch": 64, "device": "cpu"}


def cpu_name() -> str:
    """The CPU model and core count as lscpu reports them (platform.processor() where lscpu is missing)."""
    try:
        info = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    return f"{fields.get('Model name', '?').strip()}, {fields.get('CPU(s)', '?').strip()} CPUs"


def best_of(fn: Callable[[], object], repeats: int, warmup: bool = True) -> float:
    """Fastest wall time of ``repeats`` calls after one warm-up call (seconds; no warm-up where told)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def as_model(net: SRNet) -> SRModel:
    """A network with random weights, wrapped as ``afm_sr.infer`` loads one (speed depends on the architecture)."""
    return SRModel(net.eval(), ModelInfo(ArchRecord.of(net, (2, 4, 8)), source="random"))


def step_args(**given: object) -> argparse.Namespace:
    """A training step's settings: ``STEP_DEFAULTS`` with ``given`` replacing some."""
    unknown = set(given) - set(STEP_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown step settings {sorted(unknown)}")
    return argparse.Namespace(**{**STEP_DEFAULTS, **given})


class RandomBatches(Dataset):
    """``n`` fixed random batches of LR/HR patches at one scale (what the real PatchDataset yields)."""

    def __init__(self, n: int, batch: int, lr_size: int, scale: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.low = torch.randn(n, batch, 1, lr_size, lr_size, generator=g)
        self.scale = scale

    def __len__(self) -> int:
        return len(self.low)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        up = torch.nn.functional.interpolate(self.low[i], scale_factor=self.scale, mode="nearest")
        return {"low": self.low[i], "input": up, "target": up + 0.1, "scale": torch.tensor(self.scale)}


def make_net(args: argparse.Namespace) -> SRNet:
    """The network under test, seeded."""
    torch.manual_seed(0)
    if args.arch == "msr":
        return MultiScaleResNet(args.blocks, args.width, 32, scales=(args.scale,))
    return VDSR(args.depth, args.width)


def lr_size(args: argparse.Namespace) -> int:
    """LR pixels per patch side: the paper's 41 px HR patches for VDSR, ``lr_patch`` for MultiScaleResNet."""
    return args.lr_patch if args.arch == "msr" else 41 // args.scale


def lightning(args: argparse.Namespace, precision: str = "32-true", channels_last: bool = False,
              compile: bool = False) -> float:
    """Patches/s of ``Trainer.fit`` over SRModule (plain MSE, clipping on), first step excluded."""
    module = SRModule(make_net(args), optimizer=partial(torch.optim.SGD, lr=0.1, momentum=0.9, weight_decay=1e-4),
                      scheduler=None, clip_theta=0.01, loss_weighting="none", scales=(args.scale,),
                      channels_last=channels_last, compile=compile)
    stamps: list[float] = []

    class Clock(pl.Callback):
        def on_train_batch_end(self, *a: object) -> None:
            if args.device == "cuda":
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

    warm = 3 if compile else 1  # compiling takes the first steps (forward, backward, recompiles)
    loader = DataLoader(RandomBatches(args.steps + warm, args.batch, lr_size(args), args.scale), batch_size=None)
    trainer = pl.Trainer(accelerator="gpu" if args.device == "cuda" else "cpu", devices=1,
                         max_steps=args.steps + warm, precision=precision, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         callbacks=[Clock()])
    trainer.fit(module, train_dataloaders=loader)
    return args.batch * args.steps / (stamps[-1] - stamps[warm - 1])
