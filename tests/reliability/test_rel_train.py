"""train.py/eval.py on bad configs and bad checkpoints: one clear message, exit != 0, no traceback (composition
errors on the real command line, the rest in-process from the composed config); and a NaN loss stops training
without touching a good checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import support
from rel_support import TINY, CliResult, run_script

Task = Callable[[str, list[str], Path], CliResult]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run folder of a tiny, finished training run (best.ckpt and last.ckpt in checkpoints/)."""
    return support.train_in_process([*TINY, "test=false"], tmp_path_factory.mktemp("trained"))


def _assert_clear_failure(code: int, stderr: str, *needles: str) -> None:
    """Exit code != 0, no traceback, and every needle (the file, the problem) in stderr."""
    assert code != 0, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    for needle in needles:
        assert needle in stderr, stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize(("override", "message"), [("dataset=mutli", "Could not find 'dataset/mutli'"),
                                                   ("model.dpeth=20", "dpeth")])
def test_eval_config_typo(tmp_path: Path, override: str, message: str) -> None:
    res = run_script("eval.py", [*TINY, override, "ckpt_path=x.ckpt", f"hydra.run.dir={tmp_path / 'e'}"], tmp_path)
    _assert_clear_failure(res.returncode, res.stderr, message)


@pytest.mark.parametrize("script", ["train.py", "eval.py"])
def test_checkpoint_that_does_not_exist(tmp_path: Path, task: Task, script: str) -> None:
    missing = tmp_path / "nowhere" / "last.ckpt"
    res = task(script, [*TINY, f"ckpt_path={missing}"], tmp_path / "r")
    _assert_clear_failure(res.code, res.err, "afm-sr: error:", str(missing))


@pytest.mark.parametrize("script", ["train.py", "eval.py"])
def test_file_that_is_not_a_checkpoint(tmp_path: Path, task: Task, script: str) -> None:
    fake = tmp_path / "notes.ckpt"
    fake.write_text("these are my notes, not a checkpoint\n")
    res = task(script, [*TINY, f"ckpt_path={fake}"], tmp_path / "r")
    _assert_clear_failure(res.code, res.err, "afm-sr: error:", str(fake))


def test_resume_takes_the_checkpoint_architecture(tmp_path: Path, task: Task, trained: Path) -> None:
    """Resuming with other model.* settings builds the network the checkpoint records, and says so."""
    ckpt = trained / "checkpoints" / "last.ckpt"
    res = task("train.py", [*TINY, "model.width=8", "trainer.max_epochs=2", "test=false", f"ckpt_path={ckpt}"],
               tmp_path / "r")
    assert res.code == 0, res.err[-3000:]
    assert "using the architecture the checkpoint records, VDSR(depth=2, width=4" in res.out


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_good_checkpoint(task: Task, trained: Path) -> None:
    """A diverging run writing into the folder of a good one must stop before it replaces best.ckpt/last.ckpt."""
    saved = {name: ((trained / "checkpoints" / name).read_bytes(), (trained / "checkpoints" / name).stat().st_mtime_ns)
             for name in ("best.ckpt", "last.ckpt")}
    res = task("train.py", [*TINY, "optimizer.lr=1e12", "module.clip_theta=null", "test=false"], trained)
    assert res.code == 2, res.err[-3000:]
    _assert_clear_failure(res.code, res.err, "afm-sr: error: training loss became")
    for name, (content, mtime) in saved.items():
        path = trained / "checkpoints" / name
        assert path.read_bytes() == content and path.stat().st_mtime_ns == mtime, f"{name} was overwritten"
