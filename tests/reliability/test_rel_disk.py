"""Round 3, full disks and write errors: whatever library writes (safetensors, tifffile, gwyfile, NumPy), a failed
write is one line naming the file and the cause (disk full, file size limit, read-only), and nothing is lost.

A real full disk is a 1 MiB tmpfs mounted for the test (root only; skipped with the reason elsewhere); the file
size limit is RLIMIT_FSIZE in a subprocess with SIGXFSZ ignored, so writes fail with EFBIG instead of killing it.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from rel_support import REPO, CliResult, error_lines, only_error, small_tmpfs, surface, write_npy

from afm_sr.errors import AFMFileError

Cli = Callable[..., CliResult]


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a 1 MiB tmpfs holding ``old.bin`` (64 KiB) and a filler file that takes every other byte."""
    with small_tmpfs(tmp_path / "disk", "size=1m") as disk:
        (disk / "old.bin").write_bytes(b"o" * 65536)
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        yield disk


def _names(folder: Path) -> list[str]:
    """Every name in ``folder``, hidden temp files included."""
    return sorted(p.name for p in folder.iterdir())


def test_export_to_a_full_disk_says_the_disk_is_full(full_disk: Path, cli: Cli, tiny_model: Path) -> None:
    out = full_disk / "w.safetensors"
    line = only_error(cli("export", tiny_model, out))
    assert str(out) in line and "the disk is full" in line and "ENOSPC" in line, line
    assert _names(full_disk) == ["filler", "old.bin"]


def test_export_over_old_weights_on_a_full_disk_keeps_them(full_disk: Path, cli: Cli, tiny_model: Path) -> None:
    old = full_disk / "old.bin"
    line = only_error(cli("export", tiny_model, old, "--force"))
    assert "the disk is full" in line and str(old) in line
    assert old.read_bytes() == b"o" * 65536 and _names(full_disk) == ["filler", "old.bin"]


@pytest.mark.parametrize("suffix", [".npy", ".tiff", ".gwy", ".txt"])
def test_enhance_to_a_full_disk_says_so_for_every_format(full_disk: Path, cli: Cli, tiny_model: Path,
                                                         tmp_path: Path, suffix: str) -> None:
    scan = write_npy(tmp_path / "scan.npy", surface())
    out = full_disk / f"out{suffix}"
    line = only_error(cli("enhance", scan, "-o", out, "--scale", "2", "--model", tiny_model, "--device", "cpu"))
    assert str(out) in line and "the disk is full" in line, line
    assert _names(full_disk) == ["filler", "old.bin"]


def test_api_write_onto_a_full_disk_keeps_the_old_file(full_disk: Path) -> None:
    from afm_sr.io import HeightMap, write

    old = full_disk / "old.bin"
    old.rename(full_disk / "old.npy")
    with pytest.raises(AFMFileError, match=r"old\.npy: could not write it: the disk is full"):
        write(HeightMap(surface(256, 256), 1e-8), full_disk / "old.npy", overwrite=True)
    assert (full_disk / "old.npy").read_bytes() == b"o" * 65536 and _names(full_disk) == ["filler", "old.npy"]


def test_a_short_write_on_a_full_disk_says_disk_full(full_disk: Path) -> None:
    """NumPy's "65536 requested and 51168 written" carries no errno: the free space says why."""
    from afm_sr.atomic import write_atomically

    def fill(tmp: Path) -> None:
        np.zeros(300_000).tofile(tmp)

    with pytest.raises(AFMFileError, match=r"the disk is full .*requested and \d+ written"):
        write_atomically({full_disk / "a.bin": fill}, overwrite=False)


def test_library_errors_that_name_no_cause_are_one_error(tmp_path: Path) -> None:
    """A writer library's own exception (not an OSError) still becomes one AFMFileError naming the output."""
    from afm_sr.atomic import write_atomically

    class LibraryError(Exception):
        pass

    def fill(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise LibraryError("serializer failed")

    with pytest.raises(AFMFileError, match=r"out\.bin: could not write it \(LibraryError: serializer failed\)"):
        write_atomically({tmp_path / "out.bin": fill}, overwrite=False)
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_file_system_is_one_line(tmp_path: Path, cli: Cli, tiny_model: Path) -> None:
    scan = write_npy(tmp_path / "scan.npy", surface())
    with small_tmpfs(tmp_path / "ro", "size=1m,ro") as ro:
        line = only_error(cli("enhance", scan, "-o", ro / "out.gwy", "--scale", "2", "--model", tiny_model, "--device",
                              "cpu"))
        assert "Read-only file system" in line and str(ro / "out.gwy") in line, line
        assert "cannot create the folder (Read-only file system)" in only_error(
            cli("enhance", scan, "-o", ro / "new" / "", "--scale", "2", "--model", tiny_model, "--device", "cpu"))


_FSIZE = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
from afm_sr.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("what", ["export", "enhance"])
def test_the_file_size_limit_is_named(tmp_path: Path, tiny_model: Path, what: str) -> None:
    """``ulimit -f`` (RLIMIT_FSIZE): writes fail with EFBIG; one line naming the file size limit (in a subprocess)."""
    scan = write_npy(tmp_path / "scan.npy", surface())
    pad = json.dumps({"pad": "x" * 8192})  # the tiny model alone is smaller than the limit
    args = (["export", str(tiny_model), str(tmp_path / "w.safetensors"), "--notes", pad] if what == "export" else
            ["enhance", str(scan), "-o", str(tmp_path / "out.gwy"), "--scale", "4", "--model", str(tiny_model),
             "--device", "cpu"])
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", _FSIZE, *args], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=300, check=False)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-2000:]
    lines = error_lines(res.stderr)
    assert len(lines) == 1 and "file-size limit" in lines[0] and "EFBIG" in lines[0], res.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part") or p.name.startswith(("w.", "out."))]


def test_a_checkpoint_save_on_a_full_disk_says_disk_full(full_disk: Path) -> None:
    """torch.save reports a full disk as RuntimeError('... unexpected pos ...'): no errno, the free space says why."""
    import torch

    from afm_sr.callbacks import AtomicCheckpointIO

    with pytest.raises(AFMFileError, match=r"last\.ckpt: could not write it: the disk is full"):
        AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(300_000)}, full_disk / "last.ckpt")
    assert _names(full_disk) == ["filler", "old.bin"]
