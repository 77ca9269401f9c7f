"""Peak memory of ``afm-sr info`` and ``read`` on large deflated TIFFs, against the size of the decoded image.

Usage: ``python experiments/bench/bench_read_memory.py [--mib 256] [--folder DIR] [--code PATH]``

Writes deflated TIFFs of ``--mib`` MiB decoded (float64, float32 and int16 in nm, in tifffile's default strips and
as one strip, as some instruments write them), then runs ``describe`` (what ``afm-sr info`` shows) and ``read`` of
each in a fresh subprocess and prints the peak resident memory it added (VmHWM minus VmRSS after the imports)
divided by the decoded image (the file's own values) and by the float64 heights ``read`` returns, and the
seconds. ``--code`` runs another checkout's afm_sr (e.g. an older commit unpacked with ``git archive``), from
that folder so ``python -c`` imports it, for a before/after comparison.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
_CHILD = """
import sys
import time
from afm_sr.io import describe, read

def rss(key):
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) * 1024 for line in handle if line.startswith(key + ":"))

base, start = rss("VmRSS"), time.perf_counter()
(describe if sys.argv[1] == "info" else read)(sys.argv[2], "Page 0", pixel_size=1e-8, z_unit=sys.argv[3],
                                                memory_limit="64G")
print(rss("VmHWM") - base, time.perf_counter() - start)
"""


def make_tiffs(folder: Path, mib: int) -> dict[str, tuple[Path, str, int]]:
    """Deflated TIFFs of ``mib`` MiB decoded: name -> (path, z unit, decoded bytes)."""
    import tifffile

    files = {}
    for dtype, unit in ((np.float64, "m"), (np.float32, "m"), (np.int16, "nm")):
        itemsize = np.dtype(dtype).itemsize
        nx = 4096
        ny = (mib << 20) // (nx * itemsize)
        y = np.linspace(0, 40, ny)[:, None]
        x = np.linspace(0, 40, nx)[None, :]
        # whole multiples of 2**-37 m (about 7 pm) or of 1 nm: few mantissa bits, so deflate shrinks them
        data = (np.round(np.sin(x) * np.cos(y) * 1000) * (2.0**-37 if unit == "m" else 1.0)).astype(dtype)
        for layout, rows in (("strips", None), ("one-strip", ny)):
            path = folder / f"{np.dtype(dtype).name}-{layout}.tif"
            if not path.exists():
                tifffile.imwrite(path, data, compression="zlib", rowsperstrip=rows)
            files[path.stem] = (path, unit, data.nbytes)
        del data
    return files


def peak(code: Path, command: str, path: Path, unit: str) -> tuple[int, float]:
    """Bytes of peak resident memory ``command`` (info or read) of ``path`` added in a fresh process, and seconds."""
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", _CHILD, command, str(path), unit], capture_output=True, text=True,
                         env=env, cwd=code, check=True)
    used, seconds = res.stdout.split()[-2:]
    return int(used), float(seconds)


def main() -> None:
    """Print one row per file and command: decoded MiB, peak MiB, peak / decoded, peak / float64 heights."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="decoded size of each test image in MiB")
    parser.add_argument("--folder", type=Path, default=None, help="where the TIFFs are kept (default: a temp folder)")
    parser.add_argument("--code", type=Path, default=REPO, help="checkout whose afm_sr is measured")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        files = make_tiffs(folder, args.mib)
        print(f"code: {args.code}")
        print(f"{'file':<18} {'cmd':<5} {'decoded MiB':>11} {'peak MiB':>9} {'peak/decoded':>12} {'peak/float64':>12} "
              f"{'s':>5}")
        for name, (path, unit, decoded) in files.items():
            pixels = decoded // np.dtype(name.split("-")[0]).itemsize
            for command in ("info", "read"):
                used, seconds = peak(args.code, command, path, unit)
                print(f"{name:<18} {command:<5} {decoded / 2**20:>11.0f} {used / 2**20:>9.0f} "
                      f"{used / decoded:>12.2f} {used / (pixels * 8):>12.2f} {seconds:>5.1f}")


if __name__ == "__main__":
    main()
