"""Archives through ``afm-sr enhance``: the model loaded once, read-ahead/write-behind, --resume, --shard, summary."""

from __future__ import annotations

import csv
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from test_infer import surface, write_tiny_checkpoint

import afm_sr.infer.weights as weights
from afm_sr.archive import parse_shard, pipelined, shard
from afm_sr.cli import main
from afm_sr.errors import InputError
from afm_sr.infer import enhance, load_model


def _folder(tmp_path: Path, n: int, px: int = 16) -> Path:
    """``n`` small .npy scans in tmp_path/scans."""
    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(n):
        np.save(folder / f"s{i:03d}.npy", surface(px, seed=i))
    return folder


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record every weights file read (and checked) from now on."""
    calls: list[Path] = []
    real = weights.read_weights

    def read_weights(path: Path) -> object:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(weights, "read_weights", read_weights)
    return calls


def test_100_files_load_and_check_the_model_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = write_tiny_checkpoint(tmp_path / "tiny.ckpt")
    folder = _folder(tmp_path, 100)
    calls = _counting(monkeypatch)
    code = main(["enhance", str(folder / "*.npy"), "-o", str(tmp_path / "out"), "--scale", "2", "--no-adapt",
                 "--model", str(ckpt), "--device", "cpu", "--pixel-size", "1e-8"])
    assert code == 0 and len(list((tmp_path / "out").glob("*_x2.gwy"))) == 100
    model = load_model(ckpt)  # no new read: loaded and checked once per process
    assert calls == [ckpt]
    torch.nn.init.zeros_(next(model.net.parameters()))  # each load is the caller's own copy
    assert next(load_model(ckpt).net.parameters()).abs().sum() > 0 and calls == [ckpt]
    os.utime(ckpt, ns=(os.stat(ckpt).st_atime_ns, os.stat(ckpt).st_mtime_ns + 10**9))  # a new file: read again
    load_model(ckpt)
    assert calls == [ckpt, ckpt]


def test_enhance_prepares_one_copy_per_device_and_precision(tmp_path: Path) -> None:
    model = load_model(write_tiny_checkpoint(tmp_path / "tiny.ckpt"))
    for seed in range(3):
        enhance(surface(32, seed=seed), 2, model, pixel_size=1e-8, device="cpu", adapt=False)
    assert list(model._copies) == [("cpu", torch.float32)]


def test_resume_skips_finished_files_and_the_summary_covers_all(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = write_tiny_checkpoint(tmp_path / "tiny.ckpt")
    folder, out = _folder(tmp_path, 4), tmp_path / "out"
    args = ["enhance", str(folder / "*.npy"), "-o", str(out), "--scale", "2", "--no-adapt", "--model", str(ckpt),
            "--device", "cpu", "--pixel-size", "1e-8"]
    assert main([*args[:1], *(str(p) for p in sorted(folder.glob("*.npy"))[:2]), *args[2:]]) == 0  # "stopped"
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("*.gwy")}
    assert len(first) == 2
    capsys.readouterr()
    assert main(args) == 2  # the summary and two outputs exist: an error without --resume or --force
    assert "exists" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.gwy") if p.name in first} == first  # not redone
    with (out / "enhance_summary.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["status"] for r in rows] == ["ok"] * 4 and [Path(r["file"]).name for r in rows] == [
        f"s{i:03d}.npy" for i in range(4)]
    assert all(r["input_px"] == "16x16" and r["output_px"] == "32x32" and float(r["seconds"]) > 0 for r in rows)
    assert main([*args, "--resume", "--force"]) == 2


def test_shards_are_disjoint_and_cover_the_files(tmp_path: Path) -> None:
    ckpt = write_tiny_checkpoint(tmp_path / "tiny.ckpt")
    folder, out = _folder(tmp_path, 5), tmp_path / "out"
    for i in range(2):
        assert main(["enhance", str(folder / "*.npy"), "-o", str(out), "--scale", "2", "--no-adapt", "--model",
                     str(ckpt), "--device", "cpu", "--pixel-size", "1e-8", "--shard", f"{i}/2"]) == 0
    names = [sorted(Path(r["file"]).name for r in csv.DictReader((out / f"enhance_summary_{i}-of-2.csv").open()))
             for i in range(2)]
    assert names == [["s000.npy", "s002.npy", "s004.npy"], ["s001.npy", "s003.npy"]]
    assert len(list(out.glob("*_x2.gwy"))) == 5
    assert shard(list(range(7)), 2, 3) == [2, 5] and parse_shard("3/4") == (3, 4)
    with pytest.raises(ValueError, match=r"0\.\.N-1"):
        parse_shard("4/4")


def test_pipelined_reads_ahead_writes_behind_and_keeps_failures_to_their_item() -> None:
    """While item 0 computes, item 1 is read; a failing read fails only its item; results come out in order."""
    second_read = threading.Event()
    events: list[str] = []

    def read(i: int) -> int:
        if i == 1:
            second_read.set()
        if i == 2:
            raise InputError("unreadable")
        return i

    def compute(i: int, data: int) -> int:
        if i == 0:
            assert second_read.wait(5), "item 1 was not read while item 0 computed"
        return 10 * data

    def write(i: int, result: int) -> None:
        events.append(f"w{i}")

    done = list(pipelined([0, 1, 2, 3], read, compute, write))
    assert [d.item for d in done] == [0, 1, 2, 3]
    assert [d.result for d in done] == [0, 10, None, 30] and isinstance(done[2].error, InputError)
    assert events == ["w0", "w1", "w3"]
