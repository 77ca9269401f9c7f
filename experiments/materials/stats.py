"""Compare synthetic materials with real AFM maps: RMS roughness, height skewness, PSD slope.

Real maps: ../shared/afm-train/*.npy (meters), plane-levelled like the synthetic ones.
Usage: python experiments/materials/stats.py [--images 8]; writes stats.png and stats.md here.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from common import MATERIALS, ROOT, material

from afm_sr.preprocess import plane_level

REAL = ROOT.parent / "shared" / "afm-train"


def psd_slope(z: np.ndarray) -> float:
    """Log-log slope of the radially averaged PSD between 4 cycles per frame and 0.25 cycles/px."""
    n = min(z.shape)
    z = z[:n, :n] * np.outer(np.hanning(n), np.hanning(n))
    p = np.abs(np.fft.fft2(z)) ** 2
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij"))
    edges = np.geomspace(4 / n, 0.25, 16)
    idx = np.digitize(f.ravel(), edges)
    k = np.array([f.ravel()[idx == i].mean() for i in range(1, len(edges))])
    s = np.array([p.ravel()[idx == i].mean() for i in range(1, len(edges))])
    return float(np.polyfit(np.log(k), np.log(s), 1)[0])


def describe(z: np.ndarray) -> tuple[float, float, float]:
    """(RMS in nm, skewness, PSD slope) of a plane-levelled map."""
    z = plane_level(z)
    d = z - z.mean()
    rms = d.std()
    return rms * 1e9, float((d**3).mean() / rms**3), psd_slope(z)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=8)
    args = ap.parse_args()
    rows: dict[str, np.ndarray] = {}
    real = [describe(np.load(p).astype(np.float64)) for p in sorted(REAL.glob("*.npy"))]
    rows["real (afm-train)"] = np.array(real)
    for name in MATERIALS:
        m = material(name, seed=0, n_images=args.images)
        rows[name] = np.array([describe(h.data) for h in m.load()])
    out = Path(__file__).parent
    lines = ["| source | n | RMS nm median [IQR] | skewness median [IQR] | PSD slope median [IQR] |",
             "|---|---|---|---|---|"]
    for name, v in rows.items():
        q = np.percentile(v, [25, 50, 75], axis=0)
        cells = [f"{q[1, j]:.2f} [{q[0, j]:.2f}, {q[2, j]:.2f}]" for j in range(3)]
        lines.append(f"| {name} | {len(v)} | " + " | ".join(cells) + " |")
    (out / "stats.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 5))
    for name, v in rows.items():
        style = dict(marker="x", color="k", s=20) if name.startswith("real") else dict(s=18, alpha=0.8)
        a.scatter(v[:, 2], v[:, 0], label=name, **style)
        b.scatter(v[:, 2], v[:, 1], **style)
    a.set_yscale("log")
    a.set_xlabel("PSD slope (log-log)")
    a.set_ylabel("RMS roughness (nm)")
    b.set_xlabel("PSD slope (log-log)")
    b.set_ylabel("height skewness")
    a.legend(fontsize=7)
    fig.suptitle("synthetic materials (colours) vs real afm-train maps (black x)")
    fig.tight_layout()
    fig.savefig(out / "stats.png", dpi=70)


if __name__ == "__main__":
    main()
