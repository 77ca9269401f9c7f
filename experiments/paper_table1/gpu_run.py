"""The paper-size Table 1 (VDSR 20 x 64, the paper's recipe, mono and multi) on one GPU, in parts of ~10 minutes.

Usage (from the repository root; run it again until it prints the table):

    python experiments/paper_table1/gpu_run.py [--minutes 9] [--out multirun/paper_table1_gpu]
    python experiments/paper_table1/gpu_run.py --smoke          # a tiny CPU run of the same steps

Each call is one part: ``train.py experiment=paper_gpu`` for ``dataset=mono`` and ``dataset=multi`` side by side
on the one GPU (two small-batch jobs fill it better than one), each stopped by ``trainer.max_time`` and resumed by
the next call from its ``last.ckpt`` (weights, optimizer, scheduler, epoch, step, the torch RNG state and
Lightning's Timer restored; a part that stopped at an epoch end resumes exactly, one stopped inside an epoch
draws other patches for the rest of it: RESULTS.md). It prints each
job's patches/s for the part. Once both reached ``max_epochs``, it runs ``eval.py`` on both best checkpoints
and writes ``table1_vs_paper.md``: this run's Table 1 beside the paper's, into ``--results``.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
DATASETS = ("mono", "multi")
#: The paper's Table 1 (mean (std) over its 18 test images): scale -> bicubic PSNR, VDSR PSNR, bicubic SSIM, VDSR SSIM.
PAPER = {2: ("27.68 (3.54)", "28.31 (3.20)", "0.9697 (0.0170)", "0.9692 (0.0126)"),
         4: ("19.66 (2.85)", "20.90 (2.93)", "0.8226 (0.0594)", "0.8584 (0.0490)"),
         8: ("12.76 (2.78)", "13.51 (2.82)", "0.5018 (0.1080)", "0.5400 (0.1071)")}
#: The paper-size run: 101 ceramic images as the paper's mono set (multi: 101 + 8 x 24).
PAPER_SIZE = ["experiment=paper_gpu", "dataset.materials.ceramic.n_images=101"]
#: The smoke run: the same steps, small enough for a CPU in a minute or two.
SMOKE = ["experiment=paper_gpu", "trainer=cpu", "module.compile=false", "dataset.pin_memory=false",
         "model.depth=4", "model.width=8", "dataset.patches_per_epoch=1280", "trainer.max_epochs=2",
         "trainer.check_val_every_n_epoch=1", "dataset.materials.ceramic.n_images=12", "test=false"]


def steps_done(ckpt: Path) -> tuple[int, int, float]:
    """(epoch, global step, training seconds of Lightning's Timer) in a train.py checkpoint; zeros without one."""
    if not ckpt.is_file():
        return 0, 0, 0.0
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    timer = state.get("callbacks", {}).get("Timer", {}).get("time_elapsed", {})
    return int(state.get("epoch", 0)), int(state.get("global_step", 0)), float(timer.get("train", 0.0))


def max_time(seconds: float) -> str:
    """Lightning's ``trainer.max_time`` string (DD:HH:MM:SS) for ``seconds``."""
    whole = int(seconds)
    return f"{whole // 86400:02d}:{whole % 86400 // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def train_part(out: Path, overrides: list[str], minutes: float) -> dict[str, float]:
    """Run (or resume) both training jobs side by side for at most ``minutes``; patches/s of each job."""
    jobs, before = {}, {}
    start = time.perf_counter()
    for name in DATASETS:
        ckpt = out / name / "checkpoints" / "last.ckpt"
        _, before[name], trained = steps_done(ckpt)  # Lightning's Timer resumes its count: add this part to it
        cmd = [sys.executable, "train.py", *overrides, f"dataset={name}", f"hydra.run.dir={out / name}",
               f"trainer.max_time={max_time(trained + minutes * 60)}", "test=false", "logger=csv"]
        cmd += [f"ckpt_path={ckpt}"] if ckpt.is_file() else []
        print("+", " ".join(cmd), flush=True)
        log = (out / f"{name}.log").open("a")
        jobs[name] = (subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT), log)
    rates = {}
    for name, (proc, log) in jobs.items():
        code = proc.wait()
        log.close()
        if code != 0:
            raise SystemExit(f"gpu_run: train.py dataset={name} failed (exit {code}); see {out / name}.log")
        rates[name] = (steps_done(out / name / "checkpoints" / "last.ckpt")[1] - before[name]) / (
            time.perf_counter() - start)
    return rates


def table_vs_paper(results: Path) -> Path:
    """``table1_vs_paper.md`` from eval.py's ``table1.csv``: each scale's PSNR/SSIM here beside the paper's."""
    rows = {(r["scale"], r["method"]): r for r in csv.DictReader((results / "table1.csv").open())
            if r["material"] == "all"}
    lines = ["| scale | method | PSNR here | PSNR paper | SSIM here | SSIM paper |", "|---|---|---|---|---|---|"]
    for scale, paper in PAPER.items():
        for method in ("bicubic", *DATASETS):
            r = rows.get((str(scale), method))
            if r is None:
                continue
            psnr_paper, ssim_paper = (paper[0], paper[2]) if method == "bicubic" else (paper[1], paper[3])
            lines.append(f"| x{scale} | {method} | {float(r['psnr_mean']):.2f} ({float(r['psnr_std']):.2f}) | "
                         f"{psnr_paper} | {float(r['ssim_mean']):.4f} ({float(r['ssim_std']):.4f}) | {ssim_paper} |")
    note = ("Here: synthetic materials, range01 convention (DESIGN.md); the paper: its 18 real test images, "
            "paper convention; mono/multi both beside the paper's one VDSR column.")
    path = results / "table1_vs_paper.md"
    path.write_text("\n".join([*lines, "", note, ""]), encoding="utf-8")
    return path


def main() -> None:
    """One part of training; the evaluation and the side-by-side table once both runs are complete."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=9.0, help="wall-clock limit of each training job")
    parser.add_argument("--out", type=Path, default=REPO / "multirun" / "paper_table1_gpu")
    parser.add_argument("--results", type=Path, default=REPO / "experiments" / "paper_table1" / "results" / "paper_gpu")
    parser.add_argument("--smoke", action="store_true", help="tiny CPU run of the same steps")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for train.py and eval.py")
    args = parser.parse_args()
    overrides = [*(SMOKE if args.smoke else PAPER_SIZE), *args.overrides]
    args.out.mkdir(parents=True, exist_ok=True)
    rates = train_part(args.out, overrides, args.minutes)
    batch, epochs = (64, 2 if args.smoke else 200)
    for name, rate in rates.items():
        epoch, step, _ = steps_done(args.out / name / "checkpoints" / "last.ckpt")
        print(f"{name}: {rate * batch:.0f} patches/s this part (wall clock, setup included), epoch {epoch}, "
              f"step {step}", flush=True)
    if not all(steps_done(args.out / n / "checkpoints" / "last.ckpt")[0] >= epochs - 1 for n in DATASETS):
        print("gpu_run: not finished; run the same command again to resume")
        return
    ckpts = ", ".join(f"{n}: {args.out / n / 'checkpoints' / 'best.ckpt'}" for n in DATASETS)
    evaluate = [sys.executable, "eval.py", *[o for o in overrides if not o.startswith(("trainer.max_epochs", "test="))],
                "dataset=multi", f"checkpoints={{{ckpts}}}", f"hydra.run.dir={args.results}", "logger=csv"]
    print("+", " ".join(evaluate), flush=True)
    subprocess.run(evaluate, cwd=REPO, check=True)
    print(table_vs_paper(args.results).read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
