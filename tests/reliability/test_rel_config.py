"""train.py/eval.py (in-process, from the composed config) with invalid config values: the reason itself on one
``afm-sr: error:`` line (not Hydra's "Error in call to target" wrapper, not a Lightning traceback), exit code 2;
checkpoint paths that are folders are called folders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from rel_support import TINY, CliResult, error_lines

BAD_VALUES = [("model.depth=-5", "model.depth must be an integer in [2, 128] for VDSR, got -5"),
              ("dataset.batch_size=0", "dataset.batch_size must be >= 1, got 0"),
              ("trainer.max_steps=-2", "trainer: `max_steps` must be a non-negative integer or -1")]


@pytest.mark.parametrize(("override", "reason"), BAD_VALUES, ids=[o for o, _ in BAD_VALUES])
def test_invalid_value_gives_the_reason_on_one_line(tmp_path: Path, task: Callable[..., CliResult], override: str,
                                                    reason: str) -> None:
    res = task("train.py", [*TINY, override], tmp_path / "run")
    assert res.code == 2, res.err[-3000:]
    assert "Traceback" not in res.err and "Error in call to target" not in res.err, res.err[-3000:]
    lines = error_lines(res.err)
    assert len(lines) == 1 and lines[0].startswith(f"afm-sr: error: {reason}"), res.err[-3000:]
    assert res.err.rstrip().endswith(lines[0])  # the message is that line: nothing of it follows


@pytest.mark.parametrize("script", ["train.py", "eval.py"])
def test_checkpoint_path_that_is_a_folder(tmp_path: Path, task: Callable[..., CliResult], script: str) -> None:
    run = tmp_path / "old_run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    res = task(script, [*TINY, f"ckpt_path={run}"], tmp_path / "r")
    assert res.code == 2, res.err[-3000:]
    assert error_lines(res.err) == [f"afm-sr: error: ckpt_path={run}: is a folder, not a checkpoint file; give "
                                    f"a file in it, e.g. {run / 'checkpoints' / 'last.ckpt'}"], res.err[-3000:]
