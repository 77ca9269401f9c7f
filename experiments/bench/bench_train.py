"""Training step throughput: afm-sr's Lightning step vs a bare PyTorch loop, and fp32 / channels_last / bf16.

python experiments/bench/bench_train.py [--steps 6] [--arch vdsr --depth 20 --width 64] [--batch 64]
                                        [--arch msr --blocks 12 --lr-patch 24] [--device cpu|cuda] [--scale 2]

Same model, batch, optimizer (SGD 0.1, momentum 0.9, wd 1e-4) and adjustable clipping in all variants; the
Lightning variant runs ``SRModule`` through ``Trainer.fit`` on batches of random patches (so data loading is
not what is timed). VDSR gets the paper's 41 px HR patches (``41 // scale`` LR pixels), MultiScaleResNet
``--lr-patch`` LR pixels. Prints patches/s (and peak GPU memory on CUDA) and the ratios, measured in one run.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import STEP_DEFAULTS, RandomBatches, cpu_name, lightning, lr_size, make_net


def bare(args: argparse.Namespace, channels_last: bool = False, bf16: bool = False) -> float:
    """Patches/s of a hand-written loop: forward, MSE, backward, clip to theta/lr, SGD step."""
    dev = torch.device(args.device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = make_net(args).to(dev, memory_format=fmt)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    data = RandomBatches(args.steps + 1, args.batch, lr_size(args), args.scale)
    times = []
    for k in range(args.steps + 1):
        batch = data[k]
        x, y = batch["low"].to(dev).contiguous(memory_format=fmt), batch["target"].to(dev)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            pred = net(x, args.scale)
        loss = (pred.float() - y).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_value_(net.parameters(), 0.01 / opt.param_groups[0]["lr"])
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return args.batch * args.steps / sum(times[1:])


def main() -> None:
    """Run every variant once, print patches/s and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int)
    parser.add_argument("--arch", choices=["vdsr", "msr"])
    parser.add_argument("--depth", type=int)
    parser.add_argument("--blocks", type=int)
    parser.add_argument("--width", type=int)
    parser.add_argument("--lr-patch", type=int)
    parser.add_argument("--scale", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--device", choices=["cpu", "cuda"])
    parser.set_defaults(**STEP_DEFAULTS)
    args = parser.parse_args()
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU: {cpu_name()}"
    arch = f"VDSR {args.depth}x{args.width}" if args.arch == "vdsr" else f"MultiScaleResNet {args.blocks}x{args.width}"
    n = lr_size(args)
    print(f"{where}, threads {torch.get_num_threads()}, torch {torch.__version__}, {arch}, x{args.scale}, "
          f"batch {args.batch} of {n}x{n} LR px, {args.steps} timed steps")
    rates = {"bare fp32": bare(args), "lightning fp32": lightning(args),
             "bare channels_last": bare(args, channels_last=True),
             "lightning channels_last": lightning(args, channels_last=True),
             "bare bf16 autocast": bare(args, bf16=True), "lightning bf16-mixed": lightning(args, "bf16-mixed"),
             "lightning bf16 + channels_last": lightning(args, "bf16-mixed", channels_last=True)}
    for name, r in rates.items():
        print(f"{name:32s} {r:8.1f} patches/s")
    print(f"lightning / bare (fp32):          {rates['lightning fp32'] / rates['bare fp32']:.2f}")
    print(f"channels_last / fp32 (lightning): {rates['lightning channels_last'] / rates['lightning fp32']:.2f}")
    print(f"bf16-mixed / fp32 (lightning):    {rates['lightning bf16-mixed'] / rates['lightning fp32']:.2f}")
    print(f"bf16 + cl / fp32 (lightning):     {rates['lightning bf16 + channels_last'] / rates['lightning fp32']:.2f}")
    if args.device == "cuda":
        print(f"peak GPU memory allocated: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
