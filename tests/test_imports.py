"""Start-up stays cheap: the CLI, afm_sr.infer and the Gwyddion plug-in load no plotting, metrics or training stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from afm_sr.gwyddion import dump

#: What enhancing a scan never needs: matplotlib only writes PNGs, torchmetrics (which pulls scipy and matplotlib in)
#: only measures, Lightning and Hydra only train.
HEAVY = ("matplotlib", "scipy", "torchmetrics", "pytorch_lightning", "lightning", "hydra")


def heavy_after(code: str, env: dict[str, str] | None = None) -> list[str]:
    """The HEAVY packages in ``sys.modules`` once ``code`` has run in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    return sorted({name.split(".")[0] for name in json.loads(done.stdout.splitlines()[-1])}.intersection(HEAVY))


@pytest.mark.parametrize("module", ["afm_sr.cli", "afm_sr.infer", "afm_sr.gwyddion.plugin"])
def test_importing_a_front_end_loads_nothing_heavy(module: str) -> None:
    assert heavy_after(f"import {module}") == []


def test_afm_sr_enhance_without_preview_loads_nothing_heavy(tmp_path: Path, rng: np.random.Generator) -> None:
    np.save(tmp_path / "scan.npy", rng.normal(0, 1e-9, (32, 32)))
    args = ["enhance", str(tmp_path / "scan.npy"), "--scale", "2", "--pixel-size", "1e-8", "--device", "cpu",
            "-o", str(tmp_path / "out.npy")]
    assert heavy_after(f"from afm_sr.cli import main\nassert main({args!r}) == 0") == []
    assert (tmp_path / "out.npy").exists()


def test_a_gwyddion_plugin_run_loads_nothing_heavy(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "dump"
    path.write_bytes(dump.Field(rng.normal(0, 1e-9, (16, 16)), 1e-6, 1e-6, "m", "m").lines(dump.DATA))
    args = ["afm_sr_bicubic_x4", "run", "noninteractive", str(path)]
    code = f"from afm_sr.gwyddion import plugin\nassert plugin.main({args!r}) == 0"
    assert heavy_after(code, env={**os.environ, "HOME": str(tmp_path)}) == []
    assert dump.parse(path.read_bytes())[dump.DATA].data.shape == (64, 64)
