"""Write one PNG per synthetic material (several seeds, nm colorbar, scale bar) into gallery/.

Usage: python experiments/materials/gallery.py [--n-px 256] [--seeds 4]
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from common import MATERIALS, material

from afm_sr.preprocess import plane_level


def scale_bar(ax, n_px: int, pixel_m: float) -> None:
    width = n_px * pixel_m
    bar = 10 ** np.floor(np.log10(width / 3))
    bar *= 2 if 2 * bar < width / 3 else 1
    label = f"{bar * 1e9:.0f} nm" if bar < 1e-6 else f"{bar * 1e6:.0f} µm"
    x0, y0 = 0.06 * n_px, 0.92 * n_px
    ax.plot([x0, x0 + bar / pixel_m], [y0, y0], color="white", lw=3)
    ax.text(x0 + bar / pixel_m / 2, y0 - 0.03 * n_px, label, color="white", ha="center", va="bottom",
            fontsize=8)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-px", type=int, default=256)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "gallery")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in MATERIALS:
        fig, axes = plt.subplots(1, args.seeds, figsize=(3.2 * args.seeds, 3.0))
        for seed, ax in enumerate(np.atleast_1d(axes)):
            hm = material(name, seed=seed, n_px=args.n_px).image(0)
            z = plane_level(hm.data) * 1e9
            lo, hi = np.percentile(z, [1, 99])
            im = ax.imshow(z - lo, cmap="afmhot", vmin=0, vmax=hi - lo)
            scale_bar(ax, args.n_px, hm.pixel_size[0])
            ax.set_title(f"seed {seed}, {hm.scan_size[0] * 1e6:.2f} µm", fontsize=9)
            ax.axis("off")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).set_label("nm", fontsize=8)
        fig.suptitle(name, fontsize=11)
        fig.tight_layout()
        fig.savefig(args.out / f"{name}.png", dpi=60)
        plt.close(fig)
        print(args.out / f"{name}.png")


if __name__ == "__main__":
    main()
