"""The evaluation report of a test set: Table 1 with its caption, figure images, outputs back in nm, PNGs.

Plain Python over per-image records and prepared test images; train.py/eval.py (``afm_sr.entry``) call it
after Lightning's test loop, and nothing here knows Lightning or Hydra.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch

from afm_sr.preprocess import Normalization
from afm_sr.report.figures import Example, example_figures, gain_bars, save_png
from afm_sr.report.stats import paired_comparison
from afm_sr.report.tables import summarize, write_table1

log = logging.getLogger("afm_sr")

#: What each metric convention measures (afm_sr.metrics), as the table caption states it.
CONVENTION_TEXT = {"range01": "HR clipped range mapped to [0, 1], data_range 1, prediction clamped to [0, 1]",
                   "paper": "z-scored images as they are, data_range 1 (MATLAB psnr/ssim defaults)"}


class ReportImage(Protocol):
    """A prepared test image (``afm_sr.data.prepare.Prepared``): network units and what turns them into meters."""

    hr: torch.Tensor
    inputs: dict[int, torch.Tensor]
    lows: dict[int, torch.Tensor]
    material: str
    name: str
    stats: Normalization

    @property
    def scan_size(self) -> tuple[float, float]:
        """(width, height) of the HR image in meters."""


class HasMaterial(Protocol):
    """Anything that names its material."""

    material: str


Image = TypeVar("Image", bound=HasMaterial)


def caption(convention: str) -> str:
    """The metric definition every table states, for ``convention`` (``range01`` or ``paper``)."""
    return (f"PSNR (dB) / SSIM mean (std) over test images; convention {convention} ({CONVENTION_TEXT[convention]}); "
            "border of `scale` px cropped; SSIM 11x11 Gaussian window, sigma 1.5")


def write_table(records: Sequence[Mapping[str, Any]], out_dir: Path, convention: str) -> str:
    """Write Table 1 (md/csv, per material, Wilcoxon, records) into ``out_dir``; return the markdown."""
    paths = write_table1(records, out_dir, caption(convention))
    text = paths["table1.md"].read_text(encoding="utf-8")
    log.info("Table 1 written to %s\n%s", out_dir, text)
    return text


def metric_dict(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """``test/[method_]{psnr,ssim}_xS`` means from per-image records (``model`` rows unprefixed)."""
    return {f"test/{'' if r['method'] == 'model' else r['method'] + '_'}{m}_x{r['scale']}": r[f"{m}_mean"]
            for r in summarize(records) for m in ("psnr", "ssim")}


def pick_figure_images(images: Sequence[Image], n: int) -> list[Image]:
    """``n`` test images for figures, taken in turn from each material (first of each, then second, ...)."""
    count: dict[str, int] = {}
    order = []
    for i, im in enumerate(images):
        order.append((count.get(im.material, 0), i))
        count[im.material] = count.get(im.material, 0) + 1
    return [images[i] for _, i in sorted(order)[:n]]


@torch.no_grad()
def predict(net: torch.nn.Module, images: Sequence[ReportImage]) -> list[dict[int, np.ndarray]]:
    """``net(lr, scale)``'s output (network units) for each image and scale, for the figures."""
    net.eval()
    device = next(net.parameters()).device
    return [{s: net(low[None, None].to(device), s).float().cpu()[0, 0].numpy() for s, low in im.lows.items()}
            for im in images]


def example(image: ReportImage, preds: Mapping[str, Mapping[int, np.ndarray]]) -> Example:
    """One test image with every model's outputs, back in nm (the HR map's own normalization undone)."""
    stats = image.stats

    def nm(z: torch.Tensor | np.ndarray) -> np.ndarray:
        return stats.invert(np.asarray(z)) * 1e9

    return Example(f"{image.material}: {image.name}", nm(image.hr), {s: nm(v) for s, v in image.lows.items()},
                   {s: nm(v) for s, v in image.inputs.items()},
                   {m: {s: nm(v) for s, v in p.items()} for m, p in preds.items()}, image.scan_size[0])


def write_figures(records: Sequence[Mapping[str, Any]], examples: Sequence[Example], out_dir: Path) -> dict[str, Path]:
    """Gain bar chart over all test images and the paper's figures per example image, as PNG; return the paths."""
    paths = {"gain_bars": save_png(gain_bars(paired_comparison(records), "gain over bicubic, all test images"),
                                   out_dir / "gain_bars.png")}
    for i, ex in enumerate(examples):
        for kind, fig in example_figures(ex).items():
            paths[f"{kind}_{i}"] = save_png(fig, out_dir / f"{kind}_{i}.png")
    return paths


def report_tables(records: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The tables a W&B run receives: Table 1 overall and per material, and the paired Wilcoxon tests."""
    return {"table1": summarize(records), "table1_per_material": summarize(records, True),
            "wilcoxon": paired_comparison(records)}
