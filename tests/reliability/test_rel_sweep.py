"""A Hydra multirun whose middle job fails with an afm-sr error (issue 24, class 6): that job is reported in one
line naming it, the jobs after it still run, and the sweep's exit code says one failed."""

from __future__ import annotations

from pathlib import Path

import pytest
from rel_support import TINY, error_lines, run_script

pytestmark = pytest.mark.slow


def test_failed_job_is_reported_and_the_sweep_goes_on(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    res = run_script("train.py", ["-m", *TINY, "test=false", "module.clip_theta=null", "optimizer.lr=1e-3,1e12,1e-3",
                                  f"hydra.sweep.dir={sweep}"], tmp_path)
    assert res.returncode == 1, res.stderr[-3000:]
    lines = error_lines(res.stderr)
    assert lines[0].startswith("afm-sr: error: job 1 (") and "training loss became" in lines[0], res.stderr[-3000:]
    assert "optimizer.lr=1000000000000.0" in lines[0]
    assert len(lines) == 2 and lines[1].startswith("afm-sr: error: sweep job 1 (") and "other jobs ran" in lines[1]
    assert "Traceback" not in res.stderr
    for job in ("0", "2"):
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file(), f"job {job} did not run"
    assert not (sweep / "1" / "checkpoints").exists()


def test_single_run_keeps_one_line_and_exit_2(tmp_path: Path) -> None:
    res = run_script("train.py", [*TINY, "test=false", "module.clip_theta=null", "optimizer.lr=1e12",
                                  f"hydra.run.dir={tmp_path / 'r'}"], tmp_path)
    assert res.returncode == 2, res.stderr[-3000:]
    (line,) = error_lines(res.stderr)
    assert "training loss became" in line and "job" not in line
