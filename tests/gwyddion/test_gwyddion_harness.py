"""The plug-in inside the real Gwyddion: a C harness on Debian's libgwyddion loads sample files with Gwyddion's own
file modules, runs Data Process > Plug-Ins > afm-sr entries through its plug-in proxy and saves with its writer.

Needs gcc, pkg-config and Gwyddion's development files (Debian: gwyddion libgwyddion20-dev pkg-config, see
.ci/run); skips with the reason where they are absent. Channels are cropped in Gwyddion first so that each
plug-in run (one Python start with torch) stays at a few seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import gwyfile
import numpy as np
import pytest
from support import REPO, SAMPLES

import afm_sr
from afm_sr.io import HeightMap

HARNESS = Path(__file__).with_name("harness.c")
REFERENCE = SAMPLES / "gwyddion-reference"

#: file, the harness's specs (CHANNEL_ID:CROP[m]:FUNC,...), and what each run must give: the scale of a new
#: channel, or the message Gwyddion must show for a refusal.
CASES = {
    "nanoscopeAFM__AR_20211011.ibw": (
        ["0:24:afm_sr_enhance_x2,afm_sr_enhance_x4,afm_sr_enhance_x8", "2:16:afm_sr_enhance_x2"],
        [2, 4, 8, "Enhance x2: the current channel holds deg, not heights in m"]),
    "nanoscope__full_multiple_images.spm": (["0:32m:afm_sr_enhance_x2"], [2]),
    "SciFiDatasets__PTO_110_Virgin0001.gwy": (
        ["0:32:afm_sr_enhance_x4", "2:6:afm_sr_enhance_x4"],
        [4, "Enhance x4: a 6x6 image is too small for scale 4: need at least 8 px per side"]),
}


def _missing_tools() -> str | None:
    """Why the harness cannot be built here, or None."""
    for tool in ("gcc", "pkg-config"):
        if shutil.which(tool) is None:
            return f"{tool} not found (Debian: apt-get install gcc pkg-config)"
    if subprocess.run(["pkg-config", "--exists", "gwyddion"]).returncode != 0:
        return ("pkg-config finds no gwyddion or not its dependencies (Debian: gwyddion libgwyddion20-dev "
                "libgtk2.0-dev libfftw3-dev libgtkglext1-dev, see .ci/run)")
    return None


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The harness built against the installed Gwyddion."""
    reason = _missing_tools()
    if reason:
        pytest.skip(reason)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "gwyddion"], capture_output=True, text=True)
    if flags.returncode != 0:
        pytest.skip(f"pkg-config gwyddion fails: {flags.stderr.strip()}")
    exe = tmp_path_factory.mktemp("harness") / "harness"
    built = subprocess.run(["gcc", "-O1", "-Wno-deprecated-declarations", "-o", str(exe), str(HARNESS),
                            *flags.stdout.split()], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    return exe


@pytest.fixture(scope="module")
def gwyddion_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A temporary HOME with the plug-ins installed by ``afm-sr gwyddion install``, as a user would."""
    home = tmp_path_factory.mktemp("home")
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "AFM_SR_GWYDDION_ADAPT": "no", "AFM_SR_GWYDDION_DEVICE": "cpu"}  # adapting takes ~15 s a run
    done = subprocess.run([sys.executable, "-m", "afm_sr.cli", "gwyddion", "install"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert str(home / ".gwyddion" / "plugins" / "process") in done.stdout
    return env


@pytest.mark.parametrize("name", sorted(CASES))
def test_plugins_in_gwyddion_add_the_enhanced_channel_or_say_why_not(
        name: str, harness: Path, gwyddion_env: dict[str, str], tmp_path: Path) -> None:
    src = SAMPLES / name
    if not src.is_file():
        pytest.skip(f"{src} not found (set AFM_SR_SAMPLES)")
    specs, expected = CASES[name]
    out = tmp_path / "out.gwy"
    done = subprocess.run([str(harness), str(out), str(src), *specs], env=gwyddion_env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    ran = done.stdout.splitlines()
    assert len(ran) == len(expected), done.stdout + done.stderr
    saved = gwyfile.load(str(out))
    log = Path(gwyddion_env["HOME"]) / ".gwyddion" / "afm-sr.log"
    for line, want in zip(ran, expected, strict=True):
        if isinstance(want, str):  # refused: no channel, and Gwyddion's messages carry ours and name the log
            assert line.endswith("no new channel"), done.stderr
            assert f"Garbage key: afm-sr: error: {want}" in done.stderr
            assert f"Garbage key: afm-sr: nothing was added; every run is logged in {log}" in done.stderr
            continue
        source_id, new_id = int(line.split(" on ")[1].split(":")[0]), int(line.rsplit(" ", 1)[1])
        check_enhanced(saved, source_id, new_id, want, name)
    masked = [f"/{spec.split(':')[0]}/mask" for spec in specs if "m" in spec.split(":")[1]]
    assert all(key in saved for key in masked)  # the harness gave these channels a mask (checked above)


def check_enhanced(saved: dict, source_id: int, new_id: int, scale: int, name: str) -> None:
    """The new channel: s times the pixels, the same scan size and units, heights as afm_sr.enhance gives them."""
    original, new = saved[f"/{source_id}/data"], saved[f"/{new_id}/data"]
    crop = original.data.shape
    np.testing.assert_array_equal(original.data, np.load(REFERENCE / f"{name}.npy")[:crop[0], :crop[1]])
    assert new.data.shape == (crop[0] * scale, crop[1] * scale)
    assert (new.xreal, new.yreal) == (original.xreal, original.yreal)
    assert (new.si_unit_xy.unitstr, new.si_unit_z.unitstr) == ("m", "m")
    hm = HeightMap(original.data, (original.xreal / crop[1], original.yreal / crop[0]))
    expected = afm_sr.enhance(hm, scale, adapt=False, device="cpu").data
    np.testing.assert_allclose(new.data, expected, rtol=0, atol=1e-6 * np.ptp(expected))
    if f"/{source_id}/mask" in saved:
        mask = saved[f"/{source_id}/mask"].data
        np.testing.assert_array_equal(saved[f"/{new_id}/mask"].data, np.kron(mask, np.ones((scale, scale))))
