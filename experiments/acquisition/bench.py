"""Judge models on acquisitions they were not trained to expect: bicubic, the packaged model, candidates.

python experiments/acquisition/bench.py [--model NAME=PATH ...] [--sets samples afm-train-test]
    [--protocols bicubic box ...] [--scales 2 4 8] [--limit N] [--out experiments/acquisition/results]
    [--no-default --merge OLD/records.csv]   (judge a new model beside an earlier run's records)

Each real height map (never trained on) is leveled, clipped/z-scored, cropped to a multiple of s and recorded as an
s-times coarser scan under each protocol (``afm_sr.check_gain(..., degradation=...)``), then restored by bicubic and
by every model; range01 PSNR/SSIM with a border of s px. Protocols (lengths in LR pixels, noise in z-score units):

- ``bicubic``: the paper's MATLAB bicubic downscaling.
- ``box``: each LR pixel the mean over its own width along the fast axis, lines at MATLAB's pixel centres (the
  issue-21 protocol: neither bicubic nor the old ``scan`` degradation).
- ``probe``: a Gaussian probe response (sigma 0.5 px) on both axes at the pixel centres, white noise 0.01.
- ``tip``: a paraboloid tip dilation (curvature 1), a half-pixel detector box, lines a quarter pixel off, white 0.01.
- ``lag`` (HELD OUT: no training recipe uses a feedback lag or 1/f noise): feedback lag 0.5 px in the trace
  direction, full-pixel box, 1/f noise 0.02 and line noise 0.02.

Sets: ``samples`` (the readable files of shared/afm-samples: other labs, instruments and formats) and
``afm-train-test`` (the afm-train maps in the test split every dataset uses: same sources as training, unseen
images). Writes ``records.csv`` and ``tables.md`` into ``--out``: per protocol and scale, bicubic PSNR, each model's
gain over bicubic, the share of images improved and Wilcoxon p.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

from afm_sr.data.datamodule import split_groups
from afm_sr.degrade import BicubicDegradation, Degradation
from afm_sr.degrade.acquisition import FixedAcquisition
from afm_sr.errors import AFMSRError
from afm_sr.infer import check_gain, load_model
from afm_sr.io import HeightMap, read
from afm_sr.materials.folder import FolderMaterial
from afm_sr.report.stats import paired_comparison, to_markdown

SHARED = Path(os.environ.get("AFM_SR_SHARED", Path(__file__).resolve().parents[3] / "shared"))
#: files that do not store their pixel size or z unit: the values their README gives
READ_OPTIONS = {"nanoscope__reference_converted.csv": {"pixel_size": 2e-6 / 512, "z_unit": "nm"}}
#: the acquisition settings of the protocols (afm_sr.degrade.acquisition.Acquisition fields)
PROTOCOLS: dict[str, dict[str, float | bool]] = {
    "box": {"fast_width": 1.0},
    "probe": {"probe_sigma": 0.5, "white": 0.01},
    "tip": {"tip": 1.0, "fast_width": 0.5, "line_offset": 0.25, "white": 0.01},
    "lag": {"lag": 0.5, "fast_width": 1.0, "pink": 0.02, "line": 0.02},
}
HELD_OUT = "lag"
#: the split every dataset config uses (conf/dataset/_datamodule.yaml): its test part was never trained on
SPLIT, SPLIT_SEED = (0.7, 0.15, 0.15), 1234


def protocol(name: str) -> Degradation:
    """The degradation of a protocol name."""
    return BicubicDegradation() if name == "bicubic" else FixedAcquisition(**PROTOCOLS[name])


def sample_maps(limit: int | None) -> list[HeightMap]:
    """Every readable height map of shared/afm-samples (files without a height channel are left out)."""
    maps = []
    for path in sorted(p for p in (SHARED / "afm-samples").iterdir() if p.is_file() and p.suffix.lower() != ".md"):
        try:
            maps.append(read(path, **READ_OPTIONS.get(path.name, {})))
        except AFMSRError as err:
            print(f"left out: {err}")
    return maps[:limit]


def afm_train_test_maps(limit: int | None) -> list[HeightMap]:
    """The afm-train maps that fall in the test split of every dataset (split by rescan group)."""
    maps = FolderMaterial(name="afm_train", path=str(SHARED / "afm-train"), glob="*.npy", pixel_size=1e-8).load()
    parts = split_groups([hm.metadata.get("group", i) for i, hm in enumerate(maps)], SPLIT, SPLIT_SEED, "afm_train")
    return [hm for hm, part in zip(maps, parts, strict=True) if part == "test"][:limit]


def read_records(path: Path) -> list[dict[str, object]]:
    """The rows of an earlier run's records.csv, numbers as numbers."""
    with open(path, newline="", encoding="utf-8") as f:
        return [{**row, "scale": int(row["scale"]), "psnr": float(row["psnr"]), "ssim": float(row["ssim"])}
                for row in csv.DictReader(f)]


def main() -> None:
    """Score every (set, protocol, scale, file) for bicubic and every model; write records and tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                        help="a model to judge (repeatable); the packaged model is included as 'default'")
    parser.add_argument("--sets", nargs="+", default=["samples", "afm-train-test"])
    parser.add_argument("--protocols", nargs="+", default=["bicubic", *PROTOCOLS])
    parser.add_argument("--scales", nargs="+", type=int, default=[2, 4, 8])
    parser.add_argument("--limit", type=int, default=None, help="at most this many files per set")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results"))
    parser.add_argument("--no-default", dest="default", action="store_false", help="leave the packaged model out")
    parser.add_argument("--merge", type=Path, action="append", default=[],
                        help="records.csv of an earlier run (same sets, protocols, seeds) to tabulate beside")
    args = parser.parse_args()
    models = {"default": load_model("default")} if args.default else {}
    models.update({name: load_model(path) for name, path in (m.split("=", 1) for m in args.model)})
    loaders = {"samples": sample_maps, "afm-train-test": afm_train_test_maps}
    records = [row for path in args.merge for row in read_records(path)]
    have_bicubic = {(r["material"], r["image"], r["scale"]) for r in records if r["method"] == "bicubic"}
    for set_name in args.sets:
        maps = loaders[set_name](args.limit)
        for i, hm in enumerate(maps):
            name = hm.source.name if hm.source is not None else f"{set_name}_{i}"
            print(f"[{set_name} {i + 1}/{len(maps)}] {name}", flush=True)
            for proto in args.protocols:
                for s in args.scales:
                    base = {"material": f"{set_name}/{proto}", "image": name, "scale": s}
                    for j, (model_name, model) in enumerate(models.items()):
                        g = check_gain(hm, scale=s, model=model, level_plane=True, degradation=protocol(proto))
                        if j == 0 and (base["material"], name, s) not in have_bicubic:
                            records.append({**base, "method": "bicubic", "psnr": g.bicubic_psnr,
                                            "ssim": g.bicubic_ssim})
                        records.append({**base, "method": model_name, "psnr": g.model_psnr, "ssim": g.model_ssim})
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "records.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    held = f" ({HELD_OUT}: the held-out family)"
    caption = (f"Gain over bicubic per set/protocol{held}; range01, border s; models "
               + ", ".join([f"{k} = {m.info.source}" for k, m in models.items()] + [str(p) for p in args.merge]))
    text = to_markdown(paired_comparison(records, by_material=True), caption)
    (args.out / "tables.md").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
