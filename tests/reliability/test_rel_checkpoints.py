"""Checkpoints afm-sr wrote, gone bad or used the wrong way (issue 24, classes 2, 6 and 7): a bit flip or a cut
file is refused naming it on resume, eval and export; a resume with another optimizer or scheduler says what
differs before Lightning loads it; a checkpoint without Lightning's training state evaluates, and refuses to
resume with one clear line."""

from __future__ import annotations

import shutil
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import support
import torch
from rel_support import TINY, CliResult, error_lines

Task = Callable[[str, list[str], Path], CliResult]
#: What each script needs beside the checkpoint to run in seconds.
RUN = {"train.py": ["trainer.max_epochs=2", "test=false"], "eval.py": ["figure_images=0"]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """last.ckpt of a tiny finished training run (Adam, StepLR; debug=tiny)."""
    run = support.train_in_process([*TINY, "test=false"], tmp_path_factory.mktemp("trained"))
    return run / "checkpoints" / "last.ckpt"


def _copy(ckpt: Path, tmp_path: Path, name: str = "last.ckpt") -> Path:
    out = tmp_path / "copy" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ckpt, out)
    return out


def _flip_a_bit(ckpt: Path) -> None:
    """Flip one bit in the middle of the largest member's data (a tensor), as a bad disk would."""
    with zipfile.ZipFile(ckpt) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
    raw = bytearray(ckpt.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    raw[info.header_offset + 30 + name_len + extra_len + info.file_size // 2] ^= 0x08
    ckpt.write_bytes(bytes(raw))


def _rewrite(ckpt: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Load our own checkpoint (trusted), change its content, save it again (a valid zip with new checksums)."""
    content = torch.load(ckpt, map_location="cpu", weights_only=False)
    change(content)
    torch.save(content, ckpt)


def _one_line(res: CliResult, *needles: str) -> str:
    assert res.code == 2, res.err[-3000:]
    assert "Traceback" not in res.err
    lines = error_lines(res.err)
    assert len(lines) == 1, res.err[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("script", ["train.py", "eval.py"])
def test_bit_flipped_checkpoint_is_refused_naming_it(tmp_path: Path, task: Task, trained: Path, script: str) -> None:
    ckpt = _copy(trained, tmp_path)
    _flip_a_bit(ckpt)
    torch.load(ckpt, map_location="cpu", weights_only=True)  # the damage torch.load does not notice
    res = task(script, [*TINY, f"ckpt_path={ckpt}", *RUN[script]], tmp_path / "r")
    _one_line(res, str(ckpt), "CRC-32")


def test_bit_flipped_checkpoint_is_not_exported(tmp_path: Path, cli: Callable[..., CliResult], trained: Path) -> None:
    ckpt = _copy(trained, tmp_path)
    _flip_a_bit(ckpt)
    res = cli("export", ckpt, tmp_path / "w.safetensors")
    _one_line(res, str(ckpt), "CRC-32")
    assert not (tmp_path / "w.safetensors").exists()


@pytest.mark.parametrize("script", ["train.py", "eval.py"])
def test_truncated_checkpoint_is_refused_naming_it(tmp_path: Path, task: Task, trained: Path, script: str) -> None:
    ckpt = _copy(trained, tmp_path)
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    res = task(script, [*TINY, f"ckpt_path={ckpt}", *RUN[script]], tmp_path / "r")
    _one_line(res, str(ckpt))


def test_resume_adam_with_sgd_says_what_differs(tmp_path: Path, task: Task, trained: Path) -> None:
    res = task("train.py", [*TINY, "optimizer=sgd", f"ckpt_path={trained}", "trainer.max_epochs=2", "test=false"],
               tmp_path / "r")
    _one_line(res, str(trained), "optimizer Adam but SGD is configured")


def test_resume_with_another_scheduler_says_what_differs(tmp_path: Path, task: Task, trained: Path) -> None:
    res = task("train.py", [*TINY, "module.scheduler._target_=torch.optim.lr_scheduler.ExponentialLR",
                            "~module.scheduler.step_size", f"ckpt_path={trained}", "trainer.max_epochs=2",
                            "test=false"], tmp_path / "r")
    _one_line(res, str(trained), "scheduler StepLR but ExponentialLR is configured")


def test_resume_of_an_older_checkpoint_checks_the_saved_state(tmp_path: Path, task: Task, trained: Path) -> None:
    """A checkpoint written before afm-sr recorded the optimizer class: the saved settings tell Adam from SGD."""
    ckpt = _copy(trained, tmp_path)
    _rewrite(ckpt, lambda c: c.pop("afm_sr_training", None))
    res = task("train.py", [*TINY, "optimizer=sgd", f"ckpt_path={ckpt}", "trainer.max_epochs=2", "test=false"],
               tmp_path / "r")
    _one_line(res, str(ckpt), "momentum", "SGD")
    res = task("train.py", [*TINY, f"ckpt_path={ckpt}", "trainer.max_epochs=2", "test=false"], tmp_path / "ok")
    assert res.code == 0, res.err[-3000:]


def test_checkpoint_without_lightning_state_evaluates(tmp_path: Path, task: Task, trained: Path) -> None:
    """Valid afm-sr record and tensors, no 'pytorch-lightning_version': weights for eval, not a resume."""
    ckpt = _copy(trained, tmp_path, "weights.ckpt")
    _rewrite(ckpt, lambda c: [c.pop(k) for k in list(c) if k not in ("state_dict", "afm_sr")])
    res = task("eval.py", [*TINY, f"ckpt_path={ckpt}", "figure_images=0"], tmp_path / "e")
    assert res.code == 0, res.err[-3000:]
    assert (tmp_path / "e" / "table1.md").is_file()
    res = task("train.py", [*TINY, f"ckpt_path={ckpt}", "trainer.max_epochs=2", "test=false"], tmp_path / "r")
    _one_line(res, str(ckpt), "no Lightning training state")


def test_eval_of_another_architecture_uses_its_record(tmp_path: Path, task: Task, trained: Path) -> None:
    """eval.py with model.* settings of another network: the checkpoint's own architecture is evaluated."""
    args = [a for a in TINY if not a.startswith("model.")]
    res = task("eval.py", [*args, "model=msr", f"ckpt_path={trained}", "figure_images=0"], tmp_path / "e")
    assert res.code == 0, res.err[-3000:]
    assert "using the architecture the checkpoint records, VDSR" in res.out


def test_bit_flipped_export_is_refused(tmp_path: Path, cli: Callable[..., CliResult], trained: Path) -> None:
    """Exported .safetensors weights carry a CRC-32 of their tensors and metadata, checked on every load."""
    weights = tmp_path / "w.safetensors"
    assert cli("export", trained, weights).code == 0
    assert cli("export", weights, tmp_path / "again.safetensors").code == 0
    raw = bytearray(weights.read_bytes())
    raw[-10] ^= 0x08  # inside the last tensor
    weights.write_bytes(bytes(raw))
    _one_line(cli("export", weights, tmp_path / "copy.safetensors"), str(weights), "CRC-32")


def test_eval_measures_the_checkpoint_not_init_weights(tmp_path: Path, cli: Callable[..., CliResult], task: Task,
                                                       trained: Path) -> None:
    """eval.py loads the checkpoint's weights itself: ``module.init_weights`` (fine-tuning's start) must not win."""
    other = support.train_in_process([*TINY, "test=false", "seed=3"], tmp_path / "other")
    start = tmp_path / "start.safetensors"
    assert cli("export", other / "checkpoints" / "last.ckpt", start).code == 0
    plain = task("eval.py", [*TINY, f"ckpt_path={trained}", "figure_images=0"], tmp_path / "plain")
    with_init = task("eval.py", [*TINY, f"ckpt_path={trained}", "figure_images=0", f"module.init_weights={start}"],
                     tmp_path / "init")
    assert plain.code == 0 and with_init.code == 0, with_init.err[-3000:]
    table = (tmp_path / "plain" / "table1.md").read_text()
    assert table == (tmp_path / "init" / "table1.md").read_text()
