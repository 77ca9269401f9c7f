"""Signals: SIGINT/SIGTERM during enhance or train stop the run through its cleanup (one line, exit 130/143, no
partial or temp file), and temp files of a run killed outright (SIGKILL) are removed by the next write there.

The signals are real and sent by the process to itself at a chosen moment (in the middle of writing an output), so
the tests are deterministic; they run in a child process because the old behaviour kills or aborts its process.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from rel_support import REPO, TINY, error_lines, run_script, surface, write_npy

from afm_sr.io import HeightMap, read, write

#: Runs ``afm-sr ARGS`` with gwyfile's writer patched to send SIGNAL to its own process halfway through writing
#: the N-th .gwy output (argv: SIGNAL N ARGS...).
DRIVER = """
import os, signal, sys
from gwyfile.objects import GwyObject
calls = []
def tofile(self, name):
    calls.append(name)
    with open(name, "wb") as handle:
        if len(calls) == int(sys.argv[2]):
            handle.write(b"GWYP half of it")
            handle.flush()
            os.kill(os.getpid(), getattr(signal, sys.argv[1]))
        handle.write(b"GWYP" + self.serialize())
GwyObject.tofile = tofile
from afm_sr.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _afm_sr_signalled(sig: str, nth: int, *args: object) -> subprocess.CompletedProcess[str]:
    """Run the driver: ``afm-sr ARGS`` that receives ``sig`` while writing its ``nth`` .gwy output."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "default"}
    return subprocess.run([sys.executable, "-c", DRIVER, sig, str(nth), *map(str, args)], capture_output=True,
                          text=True, timeout=300, check=False, cwd=REPO, env=env)


def _names(folder: Path) -> list[str]:
    """Every file name in ``folder``, hidden temp files included."""
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(("sig", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_signal_during_enhance_stops_cleanly(tmp_path: Path, tiny_model: Path, sig: str, code: int) -> None:
    first, second = write_npy(tmp_path / "a.npy", surface()), write_npy(tmp_path / "b.npy", surface())
    out = tmp_path / "out"
    res = _afm_sr_signalled(sig, 2, "enhance", first, second, "-o", out, "--model", tiny_model, "--device", "cpu")
    assert res.returncode == code, res.stderr[-3000:]
    assert "Traceback" not in res.stderr and res.stderr.count("\n") == 1, res.stderr[-3000:]
    assert error_lines(res.stderr)[0].startswith(f"afm-sr: error: interrupted by {sig};"), res.stderr
    # the finished output is complete, the interrupted one is not there at all; the summary lists the finished one
    assert _names(out) == ["a_x4.gwy", "enhance_summary.csv"]
    assert [line.split(",")[2] for line in (out / "enhance_summary.csv").read_text().splitlines()] == ["status", "ok"]
    assert read(out / "a_x4.gwy").shape == (256, 256)


def test_temp_file_of_a_killed_run_is_removed_by_the_next(tmp_path: Path, tiny_model: Path) -> None:
    src = write_npy(tmp_path / "scan.npy", surface())
    res = _afm_sr_signalled("SIGKILL", 1, "enhance", src, "--model", tiny_model, "--device", "cpu")
    assert res.returncode == -signal.SIGKILL
    left = [name for name in _names(tmp_path) if name.endswith(".part")]
    assert len(left) == 1 and left[0].startswith(".scan_x4.gwy."), _names(tmp_path)  # what SIGKILL leaves
    res = _afm_sr_signalled("SIGKILL", 99, "enhance", src, "--model", tiny_model, "--device", "cpu")  # no kill
    assert res.returncode == 0, res.stderr[-3000:]
    assert _names(tmp_path) == ["scan.json", "scan.npy", "scan_x4.gwy"]


def test_sweep_spares_temp_files_of_live_writers_and_other_names(tmp_path: Path) -> None:
    stale = [tmp_path / ".other.tiff.0123456789ab.part", tmp_path / ".out.gwy.abcdefabcdef.part"]
    live = tmp_path / ".busy.npy.fedcba987654.part"
    kept = [tmp_path / ".notes.part", tmp_path / "draft.0123456789ab.part", live]
    for path in [*stale, *kept]:
        path.write_bytes(b"x")
    holder = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)  # as a writer that is still running holds its temp file
        write(HeightMap(surface(), (1e-8, 1e-8)), tmp_path / "out.gwy")
    finally:
        os.close(holder)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)


@pytest.mark.slow
def test_sigterm_stops_training_cleanly_and_it_resumes(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    last = run_dir / "checkpoints" / "last.ckpt"
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), *TINY, "trainer.max_epochs=100000", "test=false",
                             f"hydra.run.dir={run_dir}"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not last.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert last.is_file(), "last.ckpt never appeared"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err[-3000:]
    assert "Traceback" not in err
    assert error_lines(err) == [f"afm-sr: error: interrupted by SIGTERM; resume with ckpt_path={last}"], err[-3000:]
    assert [p.name for p in run_dir.rglob("*.part")] == []

    epoch = torch.load(last, map_location="cpu", weights_only=False)["epoch"]  # our own file, trusted
    stale = last.with_name(".last.ckpt.0123456789ab.part")
    stale.write_bytes(b"left by a run killed with SIGKILL")
    res = run_script("train.py", [*TINY, f"trainer.max_epochs={epoch + 2}", "test=false", f"ckpt_path={last}",
                                  f"hydra.run.dir={run_dir}"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert torch.load(last, map_location="cpu", weights_only=False)["epoch"] == epoch + 1
    assert not stale.exists()
