"""Round 3, reading a large deflated TIFF: ``read`` and ``describe`` (``afm-sr info``) hold one float64 copy of it,
not three. Peak resident memory is measured in a fresh subprocess; the bound (1.3x the float64 heights) is loose
against the ~1.05x measured (experiments/bench/bench_read_memory.py), tight against the old 1.5..2.1x."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rel_support import REPO

_CHILD = """
import sys
from afm_sr.io import describe, read

def rss(key):
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) * 1024 for line in handle if line.startswith(key + ":"))

base = rss("VmRSS")
(describe if sys.argv[1] == "info" else read)(sys.argv[2], "Page 0", pixel_size=1e-8, memory_limit="8G")
print(rss("VmHWM") - base)
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc to read peak memory")
@pytest.mark.parametrize("command", ["info", "read"])
@pytest.mark.parametrize(("dtype", "strips"), [(np.float64, True), (np.float64, False), (np.float32, True),
                                               (np.float32, False)])
def test_reading_a_large_deflated_tiff_holds_one_float64_copy(tmp_path: Path, command: str, dtype: type,
                                                              strips: bool) -> None:
    import tifffile

    ny, nx = 2048, 4096  # 64 MiB of float64 heights
    y, x = np.mgrid[0:ny, 0:nx]
    data = (np.round(np.sin(x / 50) * np.cos(y / 50) * 1000) * 2.0**-37).astype(dtype)  # deflates well
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, data, compression="zlib", rowsperstrip=None if strips else ny)
    del data, x, y
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", _CHILD, command, str(path)], capture_output=True, text=True, env=env,
                         timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    heights = ny * nx * 8
    assert int(res.stdout.split()[-1]) < 1.3 * heights, f"peak {int(res.stdout.split()[-1]) / heights:.2f}x"
