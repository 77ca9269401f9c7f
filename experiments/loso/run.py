"""Leave-one-source-out check of the release recipe: train without source k of shared/afm-train, test on k.

python experiments/loso/run.py [--steps 300] [--blocks 6 --width 32] [--sources all] [--out experiments/loso]

For each source repository k of ``shared/afm-train/index.csv``: a folder of links to every other source's maps
(plus their index rows) stands in for afm-train, the release recipe (synthetic materials + those maps, mixed
degradation, MultiScaleResNet, batches cycling x2/x4/x8) trains for ``--steps`` steps at reduced size on the
CPU, and every map of source k is scored with the check-gain protocol (plane leveled, bicubic down by s,
restored, range01 PSNR, border s) for bicubic, the LOSO model, and the shipped models v0.1 and v0.2 given with
``--compare``. v0.1 and v0.2 were trained on all sources (their test split excepted), so beside the LOSO model
they are an upper bound, not a fair LOSO: if the LOSO model still beats v0.1, v0.2's recipe transfers at least
as well. Writes ``records.csv`` and ``RESULTS.md`` (gain per source and scale).
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir

from afm_sr import entry
from afm_sr.infer import check_gain, load_model
from afm_sr.infer.weights import ModelInfo, SRModel
from afm_sr.io import HeightMap
from afm_sr.models.checkpoint import ArchRecord

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("AFM_SR_SHARED", REPO.parent / "shared"))


def sources(index: Path) -> dict[str, list[dict[str, str]]]:
    """index.csv rows grouped by source repository."""
    out: dict[str, list[dict[str, str]]] = {}
    with index.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            out.setdefault(row["source_repo"], []).append(row)
    return out


def without(source: str, rows: dict[str, list[dict[str, str]]], src: Path, dst: Path) -> None:
    """``dst/afm-train``: links to every map not of ``source``, and their index rows."""
    folder = dst / "afm-train"
    folder.mkdir(parents=True, exist_ok=True)
    kept = [r for k, rs in rows.items() if k != source for r in rs]
    with (folder / "index.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(kept[0]))
        writer.writeheader()
        writer.writerows(kept)
    for r in kept:
        link = folder / r["file"]
        if not link.exists():
            link.symlink_to(src / r["file"])


def train(shared: Path, run_dir: Path, args: argparse.Namespace) -> SRModel:
    """The release recipe at reduced size on ``shared``; the network after the last step."""
    overrides = ["experiment=release", f"model.blocks={args.blocks}", f"model.width={args.width}",
                 f"trainer.max_steps={args.steps}", "+trainer.limit_val_batches=0", "+trainer.num_sanity_val_steps=0",
                 "optimizer.lr=1e-3", "logger=none", "callbacks=none", "test=false",
                 "trainer.enable_progress_bar=false", "dataset.cache_dir=null",
                 f"paths.shared_dir={shared}", f"paths.root_dir={REPO}", f"paths.output_dir={run_dir}"]
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    datamodule, module, trainer = entry.build(cfg)
    trainer.fit(module, datamodule=datamodule)
    return SRModel(module.net.float().eval(), ModelInfo(ArchRecord.of(module.net, module.scales), source="loso"))


def summarize(records_csv: Path, out: Path, args: argparse.Namespace) -> None:
    """RESULTS.md: mean PSNR gain over bicubic per held-out source, scale and model, and over all maps."""
    with records_csv.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    models = list(dict.fromkeys(r["model"] for r in rows))
    groups = [*dict.fromkeys(r["source"] for r in rows), "all maps"]
    lines = [f"# Leave-one-source-out: the release recipe without source k, tested on k ({len(groups) - 1} of 7)",
             "", f"Command: `python experiments/loso/run.py --steps {args.steps} --blocks {args.blocks} "
             f"--width {args.width} --compare v01=<v0.1 weights> v02=afm_sr/weights/default.safetensors`.",
             "PSNR gain (dB) over bicubic, mean over the source's maps, check-gain protocol (plane leveled,",
             "bicubic down by s, range01, border s). `loso`: MultiScaleResNet at reduced size trained on the CPU",
             "without source k.",
             "`v01`/`v02`: the shipped models, trained on all sources (test split excepted), so not held out: beside",
             "`loso` they are an upper bound for their recipe.", "",
             "| held-out source | maps | scale | " + " | ".join(models) + " |", "|---|---|---|" + "---|" * len(models)]
    for g in groups:
        for s in ("2", "4", "8"):
            sel = [r for r in rows if r["scale"] == s and (g == "all maps" or r["source"] == g)]
            mean = {m: np.mean([float(r["gain"]) for r in sel if r["model"] == m]) for m in models}
            n = len({r["file"] for r in sel})
            lines.append(f"| {g} | {n} | x{s} | " + " | ".join(f"{mean[m]:+.2f}" for m in models) + " |")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    """Train and score one LOSO model per source; write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--sources", default="all", help="comma-separated source repos, or 'all'")
    parser.add_argument("--compare", nargs="*", default=[], metavar="NAME=WEIGHTS")
    parser.add_argument("--work", type=Path, default=Path.home() / "afm-sr-loso")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--summarize", action="store_true", help="only write RESULTS.md from --out/records.csv")
    args = parser.parse_args()
    if args.summarize:
        summarize(args.out / "records.csv", args.out / "RESULTS.md", args)
        return
    src = SHARED / "afm-train"
    rows = sources(src / "index.csv")
    chosen = list(rows) if args.sources == "all" else args.sources.split(",")
    others = {name: load_model(path) for name, path in (c.split("=", 1) for c in args.compare)}
    args.out.mkdir(parents=True, exist_ok=True)
    records = []
    for k in chosen:
        tag = k.replace("/", "__")
        start = time.perf_counter()
        without(k, rows, src, args.work / tag)
        torch.manual_seed(0)
        models = {"loso": train(args.work / tag, args.work / tag / "run", args), **others}
        minutes = (time.perf_counter() - start) / 60
        for r in rows[k]:
            hm = HeightMap(np.load(src / r["file"]).astype(np.float64), (1e-8, 1e-8))
            for s in (2, 4, 8):
                for name, model in models.items():
                    g = check_gain(hm, scale=s, model=model, level_plane=True, device="cpu")
                    records.append({"source": k, "file": r["file"], "scale": s, "model": name,
                                    "bicubic_psnr": g.bicubic_psnr, "model_psnr": g.model_psnr, "gain": g.psnr_gain})
        print(f"{k}: {len(rows[k])} maps, trained {minutes:.1f} min", flush=True)
        with (args.out / "records.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
        summarize(args.out / "records.csv", args.out / "RESULTS.md", args)


if __name__ == "__main__":
    main()
