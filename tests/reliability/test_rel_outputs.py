"""Output paths: every way an output cannot be written is one line naming the path and the reason (the CLI saying
``--force``, never the API's ``overwrite=True``), nothing is left behind; and ``export --gains`` takes only gains."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from rel_support import CliResult, error_lines, surface, write_npy

from afm_sr.errors import AFMFileError, InputError, OutputExistsError

Cli = Callable[..., CliResult]


def _only(result: CliResult) -> str:
    """The one error line of a failed call (exit 2, nothing else on stderr, no traceback)."""
    assert result.code == 2 and "Traceback" not in result.err, result
    assert result.err.count("\n") == 1 and len(error_lines(result.err)) == 1, result.err
    return error_lines(result.err)[0]


def _files(folder: Path) -> list[str]:
    """Every name under ``folder``, hidden temp files included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def scan(tmp_path: Path) -> Path:
    """A small valid input with its sidecar, and a regular file ``afile.txt`` beside it."""
    (tmp_path / "afile.txt").write_text("notes")
    return write_npy(tmp_path / "scan.npy", surface())


@pytest.mark.parametrize(("output", "reason"), [("afile.txt/sub", "afile.txt is a file"),
                                                ("afile.txt/sub.npy", "afile.txt is a file, not a folder"),
                                                ("afile.txt/a/b/", "afile.txt is a file"),
                                                ("scan.npy", "is an input of this run")])
def test_enhance_output_under_a_file_or_in_the_way(tmp_path: Path, cli: Cli, tiny_model: Path, scan: Path,
                                                   output: str, reason: str) -> None:
    before = _files(tmp_path)
    line = _only(cli("enhance", scan, "-o", tmp_path / output, "--format", "npy", "--model", tiny_model, "--device",
                     "cpu"))
    assert reason in line, line
    assert _files(tmp_path) == before


def test_write_onto_a_folder_says_so(tmp_path: Path) -> None:
    from afm_sr.io import HeightMap, write

    (tmp_path / "taken.gwy").mkdir()
    with pytest.raises(AFMFileError, match=r"taken\.gwy: is a folder"):
        write(HeightMap(surface(), (1e-8, 1e-8)), tmp_path / "taken.gwy", overwrite=True)


def test_enhance_into_a_new_folder_on_a_read_only_file_system(tmp_path: Path, cli: Cli, tiny_model: Path, scan: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def read_only(self: Path, *args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    line = _only(cli("enhance", scan, "-o", tmp_path / "new" / "folder", "--model", tiny_model, "--device", "cpu"))
    assert "cannot create the folder (Read-only file system)" in line and "new/folder" in line


def _failing_temp_files(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """Make creating an afm-sr temp file fail as on a read-only or permission-denied folder (root ignores chmod)."""
    real_open = os.open

    def refuse(path: object, *args: object, **kwargs: object) -> int:
        if str(path).endswith(".part"):
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refuse)


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS, errno.ENOSPC])
def test_export_to_an_unwritable_folder(tmp_path: Path, cli: Cli, tiny_model: Path, monkeypatch: pytest.MonkeyPatch,
                                        code: int) -> None:
    _failing_temp_files(monkeypatch, code)
    out = tmp_path / "w.safetensors"
    line = _only(cli("export", tiny_model, out))
    assert str(out) in line and os.strerror(code) in line
    assert ("the disk is full" if code == errno.ENOSPC else "is the folder writable") in line, line
    assert _files(tmp_path) == []


@pytest.mark.usefixtures("no_root")
def test_export_to_a_read_only_folder(tmp_path: Path, cli: Cli, tiny_model: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert "is the folder writable" in _only(cli("export", tiny_model, locked / "w.safetensors"))
    assert list(locked.iterdir()) == []


def test_export_under_a_file(tmp_path: Path, cli: Cli, tiny_model: Path, scan: Path) -> None:
    assert "afile.txt is a file, not a folder" in _only(cli("export", tiny_model, tmp_path / "afile.txt" / "w.st"))


def test_export_says_force_where_the_cli_is_the_caller(tmp_path: Path, cli: Cli, tiny_model: Path) -> None:
    out = tmp_path / "w.safetensors"
    out.write_bytes(b"keep me")
    line = _only(cli("export", tiny_model, out))
    assert line == f"afm-sr: error: {out}: exists; pass --force to replace it"
    assert out.read_bytes() == b"keep me"
    assert cli("export", tiny_model, out, "--force").code == 0 and out.read_bytes() != b"keep me"


def test_api_says_overwrite(tmp_path: Path, tiny_model: Path) -> None:
    from afm_sr.infer import export_weights

    (tmp_path / "w.safetensors").write_bytes(b"x")
    with pytest.raises(OutputExistsError, match=r"exists; pass overwrite=True \(CLI: --force\)"):
        export_weights(tiny_model, tmp_path / "w.safetensors")


def test_dangling_symlink_output_is_named_as_such(tmp_path: Path, cli: Cli, tiny_model: Path, scan: Path) -> None:
    link = tmp_path / "result.gwy"
    link.symlink_to(tmp_path / "gone" / "result.gwy")
    line = _only(cli("enhance", scan, "-o", link, "--model", tiny_model, "--device", "cpu"))
    assert f"{link}: is a symbolic link to {tmp_path / 'gone' / 'result.gwy'}, which does not exist; pass --force" \
           in line and "another process" not in line
    assert cli("enhance", scan, "-o", link, "--model", tiny_model, "--device", "cpu", "--force").code == 0
    assert not link.is_symlink() and link.read_bytes()[:4] == b"GWYP"


def test_dangling_symlink_met_at_publishing_is_named_as_such(tmp_path: Path) -> None:
    """A link made after the checks (another process) is still described for what it is."""
    from afm_sr.atomic import write_atomically

    link = tmp_path / "out.bin"

    def fill(tmp: Path) -> None:
        tmp.write_bytes(b"data")
        link.symlink_to(tmp_path / "nowhere")

    with pytest.raises(OutputExistsError, match=r"is a symbolic link to .*nowhere, which does not exist"):
        write_atomically({link: fill}, overwrite=False)
    assert _files(tmp_path) == ["out.bin"]


BAD_GAINS = [('{"x": {"psnr": 1, "ssim": 0.01}}', "'x' is not a scale"),
             ('{"2": 5}', "must be {\"psnr\": dB, \"ssim\": delta}, got 5"),
             ('{"3": {"psnr": 1, "ssim": 0.01}}', "'3' is not a scale"),
             ('{"2": {"psnr": 1}}', "must be {\"psnr\": dB"),
             ('{"2": {"psnr": 1, "ssim": 0.01, "lpips": 2}}', "must be {\"psnr\": dB"),
             ('{"2": {"psnr": "1.2", "ssim": 0.01}}', "finite numbers"),
             ('{"2": {"psnr": NaN, "ssim": 0.01}}', "finite numbers"),
             ('{"2": {"psnr": true, "ssim": 0.01}}', "finite numbers"),
             ("[1, 2]", "expected a JSON object"),
             ("{2: 1}", "not valid JSON")]


@pytest.mark.parametrize(("gains", "reason"), BAD_GAINS, ids=[g for g, _ in BAD_GAINS])
def test_export_gains_are_checked(tmp_path: Path, cli: Cli, tiny_model: Path, gains: str, reason: str) -> None:
    line = _only(cli("export", tiny_model, tmp_path / "w.safetensors", "--gains", gains))
    assert line.startswith("afm-sr: error: argument --gains:") and reason in line, line
    assert _files(tmp_path) == []


def test_export_keeps_good_gains(tmp_path: Path, cli: Cli, tiny_model: Path) -> None:
    from afm_sr.infer import load_model

    gains = {"2": {"psnr": 0.5, "ssim": 0.01}, "8": {"psnr": -0.1, "ssim": 0}}
    assert cli("export", tiny_model, tmp_path / "w.safetensors", "--gains", json.dumps(gains)).code == 0
    assert load_model(tmp_path / "w.safetensors").info.gains == {2: {"psnr": 0.5, "ssim": 0.01},
                                                                  8: {"psnr": -0.1, "ssim": 0.0}}


def test_api_export_gains_are_checked(tmp_path: Path, tiny_model: Path) -> None:
    from afm_sr.infer import export_weights

    with pytest.raises(InputError, match="'x' is not a scale"):
        export_weights(tiny_model, tmp_path / "w.safetensors", gains={"x": {"psnr": 1.0, "ssim": 0.0}})
    assert _files(tmp_path) == []
