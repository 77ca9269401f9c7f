"""The paper's protocol on every readable real file in shared/afm-samples: bicubic down, restore, PSNR/SSIM.

python experiments/release/real_samples.py [--model PATH|default] [--out experiments/release/real_samples.md]

Each file is read (default height channel), plane-leveled as in training, clipped/z-scored, cropped to a
multiple of s, bicubic-downscaled by s = 2, 4, 8 and restored by bicubic and by the model (afm_sr.check_gain);
range01 convention, border s. Files that cannot be read are listed with the reason. Nothing here was trained on.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from afm_sr.errors import AFMSRError
from afm_sr.infer import check_gain, load_model
from afm_sr.io import read
from afm_sr.report import summarize, to_markdown
from afm_sr.report.stats import paired_comparison
from afm_sr.report.stats import to_markdown as paired_markdown

SAMPLES = Path(os.environ.get("AFM_SR_SAMPLES", Path(__file__).resolve().parents[3] / "shared" / "afm-samples"))
#: files that do not store their pixel size or z unit: the values their README gives
READ_OPTIONS = {"nanoscope__reference_converted.csv": {"pixel_size": 2e-6 / 512, "z_unit": "nm"}}


def main() -> None:
    """Print and write the table (overall and per file) plus the skipped files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("real_samples.md"))
    args = parser.parse_args()
    model = load_model(args.model)
    records, skipped = [], []
    for path in sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() != ".md"):
        try:
            hm = read(path, **READ_OPTIONS.get(path.name, {}))
            for s in (2, 4, 8):
                g = check_gain(hm, scale=s, model=model, level_plane=True)
                base = {"material": path.name, "image": path.name, "scale": s}
                records += [{**base, "method": "bicubic", "psnr": g.bicubic_psnr, "ssim": g.bicubic_ssim},
                            {**base, "method": "model", "psnr": g.model_psnr, "ssim": g.model_ssim}]
        except AFMSRError as err:
            skipped.append(f"- {path.name}: {err}")
    caption = (f"Real files of shared/afm-samples, model {model.info.source}; paper protocol (bicubic down by s), "
               "range01 (HR clipped range -> [0, 1]), border s px, SSIM 11x11 Gaussian; mean (std) over files")
    text = "\n".join([to_markdown(summarize(records), caption),
                      paired_markdown(paired_comparison(records), "Paired over files (Wilcoxon signed-rank)"),
                      to_markdown(summarize(records, by_material=True), "Per file"),
                      "Not measured:", *skipped, ""])
    print(text)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
