"""Helpers shared by the test folders: where the real AFM samples are, running train.py/eval.py as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The real AFM sample files (shared/afm-samples, see its README) and Gwyddion's reading of them; may be absent.
SAMPLES = Path(os.environ.get("AFM_SR_SAMPLES", REPO.parent / "shared" / "afm-samples"))


def run_script(script: str, args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``python <repo>/<script> ARGS`` (train.py/eval.py) as a subprocess, W&B offline, Hydra errors short."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": "0",
           "PYTHONHASHSEED": "0", "AFM_SR_SHARED": str(REPO.parent / "shared")}
    return subprocess.run([sys.executable, str(REPO / script), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def train_run(args: list[str], tmp_path: Path) -> Path:
    """Run ``train.py ARGS`` into ``tmp_path/train``, fail the test on a non-zero exit, return that run folder."""
    run_dir = tmp_path / "train"
    res = run_script("train.py", [*args, f"hydra.run.dir={run_dir}"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    return run_dir
