"""The Gwyddion plug-in without Gwyddion: install/uninstall, fast torch-free registration, the dump round trip."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from support import REPO

import afm_sr
import afm_sr.gwyddion.install as install
from afm_sr.cli import main as cli
from afm_sr.errors import AFMFileError, AFMSRError
from afm_sr.gwyddion import dump, plugin
from afm_sr.gwyddion.entries import ENTRIES
from afm_sr.io import HeightMap

ENHANCE_X2 = ENTRIES["afm_sr_enhance_x2"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary HOME, so the plug-in's folder, options and log are the test's own."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for key in plugin.OPTIONS:
        monkeypatch.delenv(f"{plugin.ENV_PREFIX}{key.upper()}", raising=False)
    return tmp_path / "home"


def plugin_dir(home: Path) -> Path:
    return home / ".gwyddion" / "plugins" / "process"


def test_install_writes_a_launcher_and_rgi_per_entry_and_uninstall_removes_exactly_those(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = plugin_dir(home)
    folder.mkdir(parents=True)
    (folder / "someone-elses-plugin").write_text("#!/bin/sh\n")
    assert cli(["gwyddion", "install"]) == 0
    out = capsys.readouterr().out
    assert str(folder) in out and "Data Process > Plug-Ins > afm-sr > Enhance x8" in out
    for entry in ENTRIES.values():
        assert os.access(folder / entry.file_name, os.X_OK)
        assert (folder / f"{entry.file_name}.rgi").read_text() == entry.registration()
    assert cli(["gwyddion", "install"]) == 0  # reinstalling replaces its own files
    assert cli(["gwyddion", "uninstall"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["someone-elses-plugin"]
    assert cli(["gwyddion", "uninstall"]) == 2
    assert "holds no afm-sr plug-ins" in capsys.readouterr().err


def test_install_refuses_to_replace_foreign_files_and_uninstall_keeps_changed_ones(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / ENHANCE_X2.file_name).write_text("#!/bin/sh\necho mine\n")
    with pytest.raises(AFMFileError, match="not written by afm-sr"):
        install.install(folder)
    assert (folder / ENHANCE_X2.file_name).read_text() == "#!/bin/sh\necho mine\n"
    (folder / ENHANCE_X2.file_name).unlink()
    install.install(folder)
    (folder / f"{ENHANCE_X2.file_name}.rgi").write_text("edited\n")
    with pytest.raises(AFMFileError, match="not written by afm-sr"):
        install.install(folder)
    report = install.uninstall(folder)
    assert report.kept == {f"{ENHANCE_X2.file_name}.rgi": "changed since afm-sr installed it"}
    assert sorted(p.name for p in folder.iterdir()) == [f"{ENHANCE_X2.file_name}.rgi"]


def test_install_on_windows_is_refused_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(install, "os", SimpleNamespace(name="nt"))
    with pytest.raises(AFMSRError, match=r"Linux and macOS only.*\.exe"):
        install.install(tmp_path)
    assert not any(tmp_path.iterdir())


def test_register_answers_in_the_shell_quickly_without_starting_python(tmp_path: Path) -> None:
    """Gwyddion runs every plug-in's ``register`` at each start (where no .rgi file answers): keep it cheap."""
    report = install.install(tmp_path)
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}  # a Python start would list its imports on stderr
    total = 0.0
    for entry in ENTRIES.values():
        times = []
        for _ in range(3):
            start = time.perf_counter()
            done = subprocess.run([str(tmp_path / entry.file_name), "register"], env=env, capture_output=True,
                                  text=True, timeout=60)
            times.append(time.perf_counter() - start)
        assert (done.returncode, done.stdout, done.stderr) == (0, entry.registration(), "")
        total += min(times)
    assert {f"{e.file_name}.rgi" for e in ENTRIES.values()} <= set(report.done)
    print(f"register, all {len(ENTRIES)} entries: {total:.3f} s (best of 3 each)")
    assert total < 0.5  # the bound for Gwyddion's start-up (a shell start is a few ms)


def height_field(shape: tuple[int, int], rng: np.random.Generator, unit_z: str = "m") -> dump.Field:
    return dump.Field(rng.normal(0, 1e-9, shape).cumsum(axis=1), 2e-6, 1.5e-6, "m", unit_z)


def test_dump_round_trip_keeps_values_bit_exact_and_refuses_a_truncated_dump(rng: np.random.Generator) -> None:
    field = height_field((5, 7), rng)
    text = field.lines(dump.DATA) + field.lines(dump.MASK)
    back = dump.parse(b"/0/data/title=Height\n" + text)
    assert back[dump.DATA].data.tobytes() == field.data.tobytes()
    assert (back[dump.MASK].xreal, back[dump.MASK].yreal, back[dump.MASK].unit_z) == (2e-6, 1.5e-6, "m")
    with pytest.raises(AFMFileError, match="cut short"):
        dump.parse(text[:len(text) // 2 - 8])


def run_plugin(entry: str, field: dump.Field, path: Path, mask: np.ndarray | None = None) -> dict[str, dump.Field]:
    content = field.lines(dump.DATA)
    if mask is not None:
        content += dump.Field(mask, field.xreal, field.yreal, "m", "").lines(dump.MASK)
    path.write_bytes(content)
    assert plugin.main([entry, "run", "noninteractive", str(path)]) == 0
    return dump.parse(path.read_bytes()) if path.read_bytes().startswith(b"/0/data/") else {}


def test_run_returns_s_times_the_pixels_same_size_units_and_upsampled_mask(
        home: Path, tmp_path: Path, rng: np.random.Generator) -> None:
    field = height_field((12, 16), rng)
    mask = (rng.random((12, 16)) > 0.5).astype(float)
    out = run_plugin("afm_sr_enhance_x4", field, tmp_path / "dump", mask)
    data = out[dump.DATA]
    hm = HeightMap(field.data, (2e-6 / 16, 1.5e-6 / 12))
    np.testing.assert_array_equal(data.data, afm_sr.enhance(hm, 4).data)
    assert (data.xreal, data.yreal, data.unit_xy, data.unit_z) == (2e-6, 1.5e-6, "m", "m")
    np.testing.assert_array_equal(out[dump.MASK].data, np.kron(mask, np.ones((4, 4))))
    assert "Enhance x4: 16x12 px -> 64x48 px" in (home / ".gwyddion" / "afm-sr.log").read_text()


@pytest.mark.parametrize(("unit_z", "shape", "entry", "message"), [
    ("deg", (16, 16), "afm_sr_enhance_x2", "holds deg, not heights in m"),
    ("m", (6, 6), "afm_sr_enhance_x4", "too small for scale 4"),
    ("m", (6, 6), "afm_sr_bicubic_x4", "too small for scale 4"),
])
def test_a_refused_channel_gives_lines_gwyddion_logs_and_no_data(
        home: Path, tmp_path: Path, rng: np.random.Generator, capsys: pytest.CaptureFixture[str],
        unit_z: str, shape: tuple[int, int], entry: str, message: str) -> None:
    path = tmp_path / "dump"
    assert run_plugin(entry, height_field(shape, rng, unit_z), path) == {}
    lines = path.read_text().splitlines()
    log = home / ".gwyddion" / "afm-sr.log"
    assert message in lines[0] and lines[0].startswith("afm-sr: error:") and str(log) in lines[1]
    assert lines[2:] == ["/0/data=[", "[]]"] and all(lines)  # no empty line: Gwyddion would stop reading there
    assert message in capsys.readouterr().err and message in log.read_text()
    with pytest.raises(AFMFileError):  # what Gwyddion does with it: it rejects the dump and adds no channel
        dump.parse(path.read_bytes())


def test_the_launcher_hands_run_to_this_python(home: Path, tmp_path: Path, rng: np.random.Generator) -> None:
    install.install(plugin_dir(home))
    path = tmp_path / "dump"
    path.write_bytes(height_field((16, 16), rng, "V").lines(dump.DATA))
    done = subprocess.run([str(plugin_dir(home) / ENHANCE_X2.file_name), "run", "noninteractive", str(path)],
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert path.read_text().startswith("afm-sr: error: Enhance x2: the current channel holds V, not heights in m")


def test_options_come_from_the_file_then_the_environment(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    options = home / ".gwyddion" / "afm-sr.conf"
    options.parent.mkdir(parents=True)
    options.write_text("# afm-sr in Gwyddion\ntile = 256\nadapt = no  # faster\n")
    monkeypatch.setenv("AFM_SR_GWYDDION_DEVICE", "cpu")
    assert plugin.enhance_arguments(plugin.read_options()) == {"model": "default", "device": "cpu", "tile": 256,
                                                               "adapt": False}
    assert plugin.enhance_arguments(plugin.OPTIONS)["adapt"] is None  # afm-sr enhance's default (ADAPT_BY_DEFAULT)
    options.write_text("scale = 4\n")
    with pytest.raises(AFMSRError, match=r"afm-sr.conf, line 1: 'scale = 4'"):
        plugin.read_options()
    with pytest.raises(AFMSRError, match="tile = 'big'"):
        plugin.enhance_arguments({**plugin.OPTIONS, "tile": "big"})


def test_bad_arguments_print_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert plugin.main(["afm_sr_enhance_x4", "run", "interactive", "x"]) == 2
    assert plugin.main(["afm_sr_enhance_x4", "register"]) == 2  # the launcher answers that itself
    assert plugin.main(["nope", "run", "noninteractive", "x"]) == 2
    assert "Gwyddion runs this" in capsys.readouterr().err
