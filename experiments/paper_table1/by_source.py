"""Table 1 and paired tests per data source, from an eval.py run's records.csv (real maps: name prefix = source).

python experiments/paper_table1/by_source.py experiments/paper_table1/results/real_heldout/records.csv

afm-train names its maps ``<source>__<name>.npy`` (ibspec, dtmicroscope, ...), so the source is what comes
before ``__``; a name without it counts as its own material. Prints Markdown to stdout.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from afm_sr.report import stats, tables


def main() -> None:
    """Read the records, relabel each by source, print Table 1 and the paired tests per source."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", type=Path)
    args = parser.parse_args()
    with open(args.records, newline="") as f:
        records = [dict(r, material=r["image"].split("__")[0] if "__" in r["image"] else r["material"],
                        psnr=float(r["psnr"]), ssim=float(r["ssim"]), scale=int(r["scale"]))
                   for r in csv.DictReader(f)]
    print(tables.to_markdown(tables.summarize(records, by_material=True), caption="per source"))
    print(stats.to_markdown(stats.paired_comparison(records, by_material=True), caption="paired, per source"))


if __name__ == "__main__":
    main()
