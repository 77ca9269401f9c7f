"""Carry ../shared/afm-train to a device machine under its 64 MiB limit: 16-bit quantized, row-differenced, LZMA.

Usage: ``python experiments/release/transfer.py pack ../shared/afm-train .gpu/afm_train.npz``
       ``python experiments/release/transfer.py unpack .gpu/afm_train.npz /tmp/shared/afm-train``

Each map's heights are quantized to 65536 levels over its own min..max (step = range / 65535, about 1.5 pm for a
100 nm range, below AFM noise), differenced along rows and LZMA-compressed: 68 MB of float32 become about 23 MB.
``unpack`` writes float32 .npy maps in meters and the original index.csv, which FolderMaterial reads as usual.
The quantization is lossy: a model trained from the unpacked copy saw heights within half a step of the real ones.
"""

from __future__ import annotations

import lzma
import sys
from pathlib import Path

import numpy as np


def pack(src: Path, dst: Path) -> None:
    """Every ``*.npy`` of ``src`` (+ index.csv) into one ``.npz`` of byte arrays."""
    arrays: dict[str, np.ndarray] = {"index.csv": np.frombuffer((src / "index.csv").read_bytes(), np.uint8)}
    for f in sorted(src.glob("*.npy")):
        a = np.load(f).astype(np.float64)
        if not np.isfinite(a).all():
            raise SystemExit(f"{f}: non-finite heights; this packer assumes finite maps")
        lo, hi = float(a.min()), float(a.max())
        q = np.round((a - lo) / ((hi - lo) or 1.0) * 65535).astype(np.int32)
        diff = np.diff(q, axis=1, prepend=0).astype(np.int32)
        arrays[f.name] = np.frombuffer(lzma.compress(diff.tobytes(), preset=6), np.uint8)
        arrays[f.name + ".meta"] = np.array([lo, hi, *a.shape], dtype=np.float64)
    np.savez(dst, **arrays)


def unpack(src: Path, dst: Path) -> None:
    """The maps of a packed ``.npz`` back as float32 meters (within half a quantization step)."""
    dst.mkdir(parents=True, exist_ok=True)
    with np.load(src) as data:
        (dst / "index.csv").write_bytes(data["index.csv"].tobytes())
        for name in data.files:
            if not name.endswith(".npy"):
                continue
            lo, hi, ny, nx = data[name + ".meta"]
            diff = np.frombuffer(lzma.decompress(data[name].tobytes()), np.int32).reshape(int(ny), int(nx))
            q = np.cumsum(diff, axis=1)
            np.save(dst / name, (lo + q / 65535 * (hi - lo)).astype(np.float32))


if __name__ == "__main__":
    {"pack": pack, "unpack": unpack}[sys.argv[1]](Path(sys.argv[2]), Path(sys.argv[3]))
