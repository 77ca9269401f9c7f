"""Training throughput of afm-sr vs the reference VDSR implementation (twtygqyy/pytorch-vdsr), in one run.

python experiments/bench/bench_peer.py --peer /tmp/pytorch-vdsr [--steps 6 --batch 64]

The peer is a checkout in a temporary folder (``git clone https://github.com/twtygqyy/pytorch-vdsr``),
never copied into this repository; without it the benchmark says so and exits 0. The peer's own
``main_vdsr.train`` runs its own ``vdsr.Net`` (20 x 64, SGD 0.1, momentum 0.9, wd 1e-4, summed MSE, grad
norm clipping) on batches of 41x41 patches, exactly as its script does on the CPU; afm-sr runs the same
architecture, batch and optimizer through ``Trainer.fit`` in each of its precision/layout settings
(``module.compile=true``: the first 3 steps, which compile, are not timed).
Prints patches/s and each afm-sr setting's ratio to the peer.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import sys
import time
from pathlib import Path

import torch
from common import RandomBatches, cpu_name, lightning, lr_size, step_args
from torch.utils.data import DataLoader


def peer(args: argparse.Namespace) -> float:
    """Patches/s of the peer's ``train()`` loop over ``args.steps`` batches (one warm-up batch excluded)."""
    sys.path.insert(0, str(args.peer))
    script = importlib.import_module("main_vdsr")
    torch.manual_seed(0)
    model = importlib.import_module("vdsr").Net()
    criterion = torch.nn.MSELoss(reduction="sum")  # the peer's MSELoss(size_average=False), current spelling
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    script.opt = argparse.Namespace(lr=0.1, step=10, clip=0.4, cuda=False)
    data = RandomBatches(args.steps + 1, args.batch, lr_size(args), args.scale)
    pairs = [pair for batch in map(data.__getitem__, range(len(data)))
             for pair in zip(batch["input"], batch["target"], strict=True)]  # HR-size inputs, as the peer trains
    warm = DataLoader(pairs[:args.batch], batch_size=args.batch)
    timed = DataLoader(pairs[args.batch:], batch_size=args.batch)
    with contextlib.redirect_stdout(io.StringIO()):  # the peer prints its epoch header
        script.train(warm, optimizer, model, criterion, 1)
        start = time.perf_counter()
        script.train(timed, optimizer, model, criterion, 1)
    return args.batch * args.steps / (time.perf_counter() - start)


def main() -> None:
    """Time the peer and afm-sr's settings side by side; print patches/s and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", type=Path, default=Path("/tmp/pytorch-vdsr"), help="checkout of pytorch-vdsr")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=64)
    given = parser.parse_args()
    args = step_args(steps=given.steps, batch=given.batch)  # VDSR 20 x 64 at x2 on the CPU, as the peer runs
    args.peer = given.peer
    if not (args.peer / "main_vdsr.py").is_file():
        print(f"skipped: no pytorch-vdsr checkout at {args.peer} "
              "(git clone https://github.com/twtygqyy/pytorch-vdsr there, or pass --peer)")
        return
    print(f"CPU: {cpu_name()}, threads {torch.get_num_threads()}, torch {torch.__version__}, "
          f"VDSR 20x64, batch {args.batch} of 41x41, {args.steps} timed steps")
    rates = {"peer (pytorch-vdsr) fp32": peer(args),
             "afm-sr fp32": lightning(args),
             "afm-sr channels_last": lightning(args, channels_last=True),
             "afm-sr bf16-mixed": lightning(args, "bf16-mixed"),
             "afm-sr bf16-mixed + channels_last": lightning(args, "bf16-mixed", channels_last=True),
             "afm-sr bf16 + channels_last + compile": lightning(args, "bf16-mixed", channels_last=True, compile=True)}
    base = rates["peer (pytorch-vdsr) fp32"]
    for name, r in rates.items():
        print(f"{name:36s} {r:8.1f} patches/s   x{r / base:.2f} of the peer")


if __name__ == "__main__":
    main()
