"""Helpers shared by the test folders: real AFM samples, train.py/eval.py in-process (composed) or as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from afm_sr import entry

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


def compose_config(overrides: list[str], config: str = "train", out_dir: Path | str = "/tmp/afm-sr-test-output",
                   ) -> DictConfig:
    """The config ``<config>.py OVERRIDES`` would run with, writing into ``out_dir`` (Hydra's compose API)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.root_dir = str(REPO)
        cfg.paths.output_dir = str(out_dir)
        del cfg["hydra"]
    return cfg


def run_in_process(config: str, overrides: list[str], out_dir: Path) -> tuple[dict[str, float], dict[str, Any]]:
    """What ``<config>.py OVERRIDES`` does, in this process: ``entry.run`` of train/evaluate on the composed config.

    Returns the task's ``(metrics, objects)``; an afm-sr error exits (SystemExit 2) with its one line on stderr.
    """
    task = entry.train if config == "train" else entry.evaluate
    return entry.run(task, compose_config(overrides, config, out_dir))


def train_in_process(args: list[str], tmp_path: Path) -> Path:
    """``train.py ARGS`` in this process into ``tmp_path/train``; return that run folder."""
    run_in_process("train", args, tmp_path / "train")
    return tmp_path / "train"


def assert_same_images(a: Any, b: Any) -> None:
    """Two set-up ``AFMDataModule``s hold the same prepared images, split alike (names, tensors, statistics)."""
    import pytest
    import torch

    for split in ("train", "val", "test"):
        assert [im.name for im in a.images[split]] == [im.name for im in b.images[split]]
        for x, y in zip(a.images[split], b.images[split], strict=True):
            assert torch.equal(x.hr, y.hr) and x.pixel_size == y.pixel_size and x.stats == y.stats
            assert all(torch.equal(x.inputs[s], y.inputs[s]) and torch.equal(x.lows[s], y.lows[s]) for s in x.inputs)
            assert x.z_range == pytest.approx(y.z_range)
