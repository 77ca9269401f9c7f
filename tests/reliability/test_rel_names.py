"""Round 3, environment and names: memory limits that overflow or make no sense, and file names at the file system's
limit (255 bytes): refused in one line before any work, or written whole (temp names never pass the limit)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from rel_support import CliResult, only_error, surface, write_npy

from afm_sr.errors import AFMFileError, InputError

Cli = Callable[..., CliResult]
BAD_LIMITS = ["1e400", "1e400G", "1e19T", "inf", "nan", "-1G", "garbage", "0x10G", ""]



@pytest.fixture
def scan(tmp_path: Path) -> Path:
    """A small valid input with its sidecar."""
    return write_npy(tmp_path / "scan.npy", surface())


@pytest.mark.parametrize("limit", [v for v in BAD_LIMITS if v])
def test_memory_limit_option_that_is_no_size(cli: Cli, scan: Path, limit: str) -> None:
    line = only_error(cli("info", scan, "--memory-limit", limit))
    assert "argument --memory-limit" in line, line


@pytest.mark.parametrize("limit", BAD_LIMITS[:-1])
def test_memory_limit_environment_that_is_no_size(cli: Cli, scan: Path, monkeypatch: pytest.MonkeyPatch,
                                                  limit: str) -> None:
    monkeypatch.setenv("AFM_SR_MEMORY_LIMIT", limit)
    line = only_error(cli("info", scan))
    assert "AFM_SR_MEMORY_LIMIT" in line and repr(limit) in line, line


@pytest.mark.parametrize("limit", ["1e400", "1e30G", float("inf"), 10**30])
def test_api_memory_limit_beyond_any_machine(scan: Path, limit: object) -> None:
    from afm_sr.io import read

    with pytest.raises(InputError, match="memory limit"):
        read(scan, memory_limit=limit)  # type: ignore[arg-type]


@pytest.mark.usefixtures("no_work")
def test_default_output_name_too_long_is_refused_first(tmp_path: Path, cli: Cli, tiny_model: Path) -> None:
    src = write_npy(tmp_path / ("s" * 250 + ".npy"), surface())  # a 254-byte name; its output, + "_x4.gwy", is 257
    line = only_error(cli("enhance", src, "--model", tiny_model, "--device", "cpu"))
    assert "257 bytes long, more than the 255" in line, line


@pytest.mark.parametrize("name", ["o" * 251 + ".gwy", "é" * 125 + ".tif", "o" * 250 + ".npy"])
def test_output_names_at_the_limit_are_written(tmp_path: Path, cli: Cli, tiny_model: Path, scan: Path,
                                               name: str) -> None:
    """A final name the file system allows is written, though ``.NAME.<hex>.part`` would pass 255 bytes."""
    out = tmp_path / "out" / name
    out.parent.mkdir()
    result = cli("enhance", scan, "-o", out, "--scale", "2", "--model", tiny_model, "--device", "cpu")
    assert result.code == 0, result.err
    assert out.is_file() and not [p for p in out.parent.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize(("name", "extra"), [("o" * 252 + ".gwy", []), ("é" * 126 + ".gwy", []),
                                             ("o" * 251 + ".npy", []),  # its sidecar, .json, is 256 bytes
                                             ("o" * 245 + ".gwy", ["--preview"])])  # +"_preview.png": 257
@pytest.mark.usefixtures("no_work")
def test_output_names_past_the_limit_are_refused_first(tmp_path: Path, cli: Cli, tiny_model: Path, scan: Path,
                                                       name: str, extra: list[str]) -> None:
    line = only_error(cli("enhance", scan, "-o", tmp_path / name, "--model", tiny_model, "--device", "cpu", *extra))
    assert "bytes long, more than the 255 this file system allows" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.json", "scan.npy"]


def test_export_and_write_refuse_too_long_names(tmp_path: Path, cli: Cli, tiny_model: Path) -> None:
    from afm_sr.io import HeightMap, write

    assert "256 bytes long" in only_error(cli("export", tiny_model, tmp_path / ("w" * 244 + ".safetensors")))
    with pytest.raises(AFMFileError, match="256 bytes long"):
        write(HeightMap(surface(), 1e-8), tmp_path / ("h" * 252 + ".txt"))
    assert list(tmp_path.iterdir()) == []


def test_temp_folders_beside_a_long_name(tmp_path: Path) -> None:
    from afm_sr.atomic import temp_folder

    with temp_folder(tmp_path / ("c" * 255)) as tmp:
        assert tmp.is_dir() and len(tmp.name.encode()) <= 255
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("no_work")
def test_a_path_component_too_long_is_one_line(tmp_path: Path, cli: Cli, tiny_model: Path, scan: Path) -> None:
    line = only_error(cli("enhance", scan, "-o", tmp_path / ("d" * 300) / "out.gwy", "--model", tiny_model, "--device",
                     "cpu"))
    assert "File name too long" in line, line


@pytest.mark.usefixtures("no_work")
def test_an_output_folder_name_too_long_is_one_line(tmp_path: Path, cli: Cli, tiny_model: Path, scan: Path) -> None:
    line = only_error(cli("enhance", scan, "-o", tmp_path / ("d" * 300) / "x" / "", "--model", tiny_model, "--device",
                          "cpu"))
    assert "cannot create the folder (File name too long); a name in the path is longer" in line, line
