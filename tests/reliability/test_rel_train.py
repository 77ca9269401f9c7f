"""train.py/eval.py as subprocesses on bad configs and bad checkpoints: one clear message, exit != 0, no traceback;
and a NaN loss stops training without touching a good checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from rel_support import TINY, run_script

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run folder of a tiny, finished training run (best.ckpt and last.ckpt in checkpoints/)."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    res = run_script("train.py", [*TINY, "test=false", f"hydra.run.dir={run_dir}"], run_dir.parent)
    assert res.returncode == 0, res.stderr[-3000:]
    return run_dir


def _assert_clear_failure(res: object, *needles: str) -> None:
    """Exit code != 0, no traceback, and every needle (the file, the problem) in stderr."""
    assert res.returncode != 0, res.stdout[-2000:]  # type: ignore[attr-defined]
    assert "Traceback" not in res.stderr, res.stderr[-3000:]  # type: ignore[attr-defined]
    for needle in needles:
        assert needle in res.stderr, res.stderr[-3000:]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("override", "message"), [("dataset=mutli", "Could not find 'dataset/mutli'"),
                                                   ("model.dpeth=20", "dpeth")])
def test_eval_config_typo(tmp_path: Path, override: str, message: str) -> None:
    res = run_script("eval.py", [*TINY, override, "ckpt_path=x.ckpt", f"hydra.run.dir={tmp_path / 'e'}"], tmp_path)
    _assert_clear_failure(res, message)


@pytest.mark.parametrize("script", ["train.py", "eval.py"])
def test_checkpoint_that_does_not_exist(tmp_path: Path, script: str) -> None:
    missing = tmp_path / "nowhere" / "last.ckpt"
    res = run_script(script, [*TINY, f"ckpt_path={missing}", f"hydra.run.dir={tmp_path / 'r'}"], tmp_path)
    _assert_clear_failure(res, "afm-sr: error:", str(missing))


@pytest.mark.parametrize("script", ["train.py", "eval.py"])
def test_file_that_is_not_a_checkpoint(tmp_path: Path, script: str) -> None:
    fake = tmp_path / "notes.ckpt"
    fake.write_text("these are my notes, not a checkpoint\n")
    res = run_script(script, [*TINY, f"ckpt_path={fake}", f"hydra.run.dir={tmp_path / 'r'}"], tmp_path)
    _assert_clear_failure(res, "afm-sr: error:", str(fake))


def test_resume_takes_the_checkpoint_architecture(tmp_path: Path, trained: Path) -> None:
    """Resuming with other model.* settings builds the network the checkpoint records, and says so."""
    ckpt = trained / "checkpoints" / "last.ckpt"
    res = run_script("train.py", [*TINY, "model.width=8", "trainer.max_epochs=2", "test=false", f"ckpt_path={ckpt}",
                                  f"hydra.run.dir={tmp_path / 'r'}"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "using the architecture the checkpoint records, VDSR(depth=2, width=4" in res.stderr + res.stdout


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_good_checkpoint(tmp_path: Path, trained: Path) -> None:
    """A diverging run writing into the folder of a good one must stop before it replaces best.ckpt/last.ckpt."""
    saved = {name: ((trained / "checkpoints" / name).read_bytes(), (trained / "checkpoints" / name).stat().st_mtime_ns)
             for name in ("best.ckpt", "last.ckpt")}
    res = run_script("train.py", [*TINY, "optimizer.lr=1e12", "module.clip_theta=null", "test=false",
                                  f"hydra.run.dir={trained}"], tmp_path)
    assert res.returncode == 2, res.stderr[-3000:]
    _assert_clear_failure(res, "afm-sr: error: training loss became")
    for name, (content, mtime) in saved.items():
        path = trained / "checkpoints" / name
        assert path.read_bytes() == content and path.stat().st_mtime_ns == mtime, f"{name} was overwritten"
