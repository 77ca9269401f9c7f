"""Training step throughput: afm-sr's Lightning step vs a bare PyTorch loop, and fp32 / channels_last / bf16.

python experiments/bench/bench_train.py [--steps 6] [--depth 20 --width 64 --batch 64]

Same model, batch (64 x 41x41), optimizer (SGD 0.1, momentum 0.9, wd 1e-4) and adjustable clipping in all
variants; the Lightning variant runs ``VDSRModule`` through ``Trainer.fit`` on a dataset of random patches
(so data loading is not what is timed). Prints patches/s and the ratios, measured in one run.
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from afm_sr.models import VDSR
from afm_sr.module import VDSRModule

try:
    from bench_materials import cpu_name
except ImportError:  # run as a module
    from experiments.bench.bench_materials import cpu_name


class RandomPatches(Dataset):
    """``n`` fixed random patches with a scale each (what the real PatchDataset yields)."""

    def __init__(self, n: int, size: int = 41) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 1, size, size, generator=g)
        self.y = self.x + 0.1 * torch.randn(n, 1, size, size, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input": self.x[i], "target": self.y[i], "scale": torch.tensor(2)}


def bare(args: argparse.Namespace, channels_last: bool = False, bf16: bool = False) -> float:
    """Patches/s of a hand-written loop: forward, MSE, backward, clip to theta/lr, SGD step."""
    torch.manual_seed(0)
    net = VDSR(args.depth, args.width)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    data = RandomPatches(args.batch * (args.steps + 1))
    times = []
    for k in range(args.steps + 1):
        x = data.x[k * args.batch:(k + 1) * args.batch].contiguous(memory_format=fmt)
        y = data.y[k * args.batch:(k + 1) * args.batch]
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred = net(x)
        loss = (pred.float() - y).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_value_(net.parameters(), 0.01 / opt.param_groups[0]["lr"])
        opt.step()
        times.append(time.perf_counter() - t)
    return args.batch * args.steps / sum(times[1:])


def lightning(args: argparse.Namespace, precision: str = "32-true", channels_last: bool = False,
              compile: bool = False) -> float:
    """Patches/s of ``Trainer.fit`` over VDSRModule (plain MSE, clipping on), first step excluded."""
    torch.manual_seed(0)
    module = VDSRModule(VDSR(args.depth, args.width),
                        optimizer=partial(torch.optim.SGD, lr=0.1, momentum=0.9, weight_decay=1e-4),
                        scheduler=None, clip_theta=0.01, loss_weighting="none", channels_last=channels_last,
                        compile=compile)
    stamps: list[float] = []

    class Clock(pl.Callback):
        def on_train_batch_end(self, *a: object) -> None:
            stamps.append(time.perf_counter())

    warm = 3 if compile else 1  # compiling takes the first steps (forward, backward, recompiles)
    loader = DataLoader(RandomPatches(args.batch * (args.steps + warm)), batch_size=args.batch)
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=args.steps + warm, precision=precision,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, callbacks=[Clock()])
    trainer.fit(module, train_dataloaders=loader)
    return args.batch * args.steps / (stamps[-1] - stamps[warm - 1])


def main() -> None:
    """Run every variant once, print patches/s and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}, threads {torch.get_num_threads()}, torch {torch.__version__}, "
          f"VDSR {args.depth}x{args.width}, batch {args.batch} of 41x41, {args.steps} timed steps")
    rates = {"bare fp32": bare(args), "lightning fp32": lightning(args),
             "bare channels_last": bare(args, channels_last=True),
             "lightning channels_last": lightning(args, channels_last=True),
             "bare bf16 autocast": bare(args, bf16=True), "lightning bf16-mixed": lightning(args, "bf16-mixed"),
             "lightning bf16 + channels_last": lightning(args, "bf16-mixed", channels_last=True)}
    for name, r in rates.items():
        print(f"{name:26s} {r:8.1f} patches/s")
    print(f"lightning / bare (fp32):          {rates['lightning fp32'] / rates['bare fp32']:.2f}")
    print(f"channels_last / fp32 (lightning): {rates['lightning channels_last'] / rates['lightning fp32']:.2f}")
    print(f"bf16-mixed / fp32 (lightning):    {rates['lightning bf16-mixed'] / rates['lightning fp32']:.2f}")
    print(f"bf16 + cl / fp32 (lightning):     {rates['lightning bf16 + channels_last'] / rates['lightning fp32']:.2f}")


if __name__ == "__main__":
    main()
