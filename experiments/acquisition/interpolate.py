"""Interpolate two exported weights files of one architecture (WiSE-FT: a fine-tuned model and its start).

python experiments/acquisition/interpolate.py START.safetensors TUNED.safetensors ALPHA OUT.safetensors

OUT = (1 - ALPHA) * TUNED + ALPHA * START, tensor by tensor, with TUNED's metadata less its measured gains (they no
longer hold) and a new checksum, so TUNED's ``degradation`` record (what its run trained on) carries over;
``afm-sr export OUT FINAL --gains ... --notes ...`` then records the average's own (``--degradation`` another
training degradation). Fine-tuning from a model keeps both in one
basin, so points between them are working models that trade the start's protocol for the tuned one's robustness
(Wortsman et al. 2022, "Robust fine-tuning of zero-shot models").
"""

from __future__ import annotations

import argparse
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

from afm_sr.models.checkpoint import read_safetensors, weights_crc


def main() -> None:
    """Write the interpolated weights."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("start", type=Path)
    parser.add_argument("tuned", type=Path)
    parser.add_argument("alpha", type=float, help="weight of START (0: TUNED itself, 1: START itself)")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    start, tuned = read_safetensors(args.start), read_safetensors(args.tuned)
    if start.tensors.keys() != tuned.tensors.keys():
        raise SystemExit("the two files hold different tensors: not one architecture")
    tensors = {k: ((1 - args.alpha) * v.double() + args.alpha * start.tensors[k].double()).to(v.dtype).contiguous()
               for k, v in tuned.tensors.items()}
    with safe_open(str(args.tuned), framework="pt") as handle:
        meta = {k: v for k, v in (handle.metadata() or {}).items() if k not in ("gains", "crc32")}
    meta["crc32"] = weights_crc(tensors, meta)
    save_file(tensors, str(args.out), metadata=meta)
    print(f"wrote {args.out}: {1 - args.alpha:g} x {args.tuned.name} + {args.alpha:g} x {args.start.name}")


if __name__ == "__main__":
    main()
