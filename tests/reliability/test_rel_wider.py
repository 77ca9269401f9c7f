"""Round 3, the wider check beyond the issue's examples: special files as outputs, line breaks in names, seeds past
64 bits, a file system out of inodes. Each is one line (exit 2) and leaves nothing behind."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from rel_support import CliResult, only_error, small_tmpfs, surface, write_npy

Cli = Callable[..., CliResult]



@pytest.fixture
def scan(tmp_path: Path) -> Path:
    """A small valid input with its sidecar."""
    return write_npy(tmp_path / "scan.npy", surface(32, 32))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
def test_force_never_replaces_a_pipe_or_device(tmp_path: Path, cli: Cli, tiny_model: Path, scan: Path) -> None:
    """``-o /dev/null --force`` as root would have replaced the device node with a regular file."""
    fifo = tmp_path / "fifo.gwy"
    os.mkfifo(fifo)
    line = only_error(cli("enhance", scan, "-o", fifo, "--force", "--scale", "2", "--model", tiny_model, "--device",
                          "cpu"))
    assert "is not a regular file (a device, pipe or socket)" in line, line
    assert fifo.is_fifo()
    assert "is not a regular file" in only_error(cli("export", tiny_model, fifo, "--force"))


def test_a_line_break_in_a_name_keeps_the_error_on_one_line(tmp_path: Path, cli: Cli) -> None:
    bad = tmp_path / "bro\nken.npy"
    bad.write_bytes(b"not numpy")
    line = only_error(cli("info", bad))
    assert "bro\\nken.npy" in line, line


def test_a_seed_past_64_bits_is_one_line(tmp_path: Path, cli: Cli, tiny_model: Path, scan: Path) -> None:
    line = only_error(cli("enhance", scan, "-o", tmp_path / "o.gwy", "--scale", "2", "--adapt", "--seed", str(2**70),
                     "--model", tiny_model, "--device", "cpu"))
    assert f"seed {2**70} is out of range" in line, line
    assert not (tmp_path / "o.gwy").exists()


def test_a_file_system_out_of_inodes_says_so(tmp_path: Path, cli: Cli, tiny_model: Path, scan: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "size=1m,nr_inodes=3") as disk:
        (disk / "a").mkdir()
        (disk / "b").mkdir()
        for out in (disk / "a" / "o.gwy", disk / "new" / "folder" / ""):
            line = only_error(cli("enhance", scan, "-o", out, "--scale", "2", "--no-adapt", "--model", tiny_model,
                                  "--device", "cpu"))
            assert "the disk is full: it has no free inodes left" in line, line
        assert sorted(p.name for p in disk.rglob("*")) == ["a", "b"]


@pytest.mark.usefixtures("no_work")
def test_an_output_format_nobody_writes_is_refused_before_the_work(tmp_path: Path, cli: Cli, tiny_model: Path,
                                                                    scan: Path) -> None:
    line = only_error(cli("enhance", scan, "-o", tmp_path / "out.v2", "--preview", "--model", tiny_model, "--device",
                          "cpu"))
    assert "cannot write '.v2' files" in line, line
