"""Fixtures of the reliability tests (helpers and constants are in rel_support.py)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import support
from rel_support import SAMPLE_PER_FORMAT, SAMPLES, CliResult


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``afm-sr ARGS...`` in-process (an escaping exception fails the test, as a traceback would)."""
    from afm_sr.cli import main

    def run(*args: str | Path) -> CliResult:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 4-channel VDSR exported as afm-sr .safetensors weights (random weights, scales 2/4/8)."""
    from safetensors.torch import save_file

    from afm_sr.models import VDSR

    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    net = VDSR(depth=2, width=4)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path),
              metadata={"format": "afm-sr", "arch": "VDSR", "depth": "2", "width": "4", "channels": "1",
                        "scales": "[2, 4, 8]"})
    return path


@pytest.fixture
def no_root() -> Iterator[None]:
    """Skip where permissions do not bind (root reads and writes everything)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("running as root: file permissions are not enforced, so a read-only folder cannot be made")
    yield


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if an enhancement starts: a refusal must come before any computation."""
    import afm_sr.infer

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the enhancement ran before the output was refused")

    monkeypatch.setattr(afm_sr.infer, "enhance", refuse)


@pytest.fixture(scope="module")
def warm_readers() -> None:
    """Read one sample per format first, so the readers' lazy imports do not count as allocations of a refusal."""
    from afm_sr.io import list_channels

    for name in SAMPLE_PER_FORMAT.values():
        if (SAMPLES / name).is_file():
            list_channels(SAMPLES / name)  # not read: a sample may hold no height channel (the .mdt)


@pytest.fixture
def task(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Callable[..., CliResult]:
    """Run ``train.py``/``eval.py`` ARGS in-process from the composed config: exit code, afm_sr log (out), stderr."""
    caplog.set_level(logging.INFO, logger="afm_sr")

    def run(script: str, args: list[str], out_dir: Path) -> CliResult:
        capsys.readouterr()
        caplog.clear()
        try:
            support.run_in_process(script.removesuffix(".py"), args, out_dir)
            code = 0
        except SystemExit as exc:  # entry.run: an afm-sr error, its line on stderr
            code = int(exc.code or 0)
        return CliResult(code, caplog.text, capsys.readouterr().err)

    return run

