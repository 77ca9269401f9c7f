"""Helpers the reliability tests share: real samples, hostile files made in tmp_path, script runner, constants.

A module with a unique name rather than ``conftest`` so ``from rel_support import ...`` never picks up another
folder's conftest; the fixtures live in this folder's conftest.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import support

from afm_sr.errors import AFMFileError

REPO = Path(__file__).resolve().parents[2]
SAMPLES = support.SAMPLES
#: One readable real file per reader (the smallest where a format has several).
SAMPLE_PER_FORMAT = {
    "ibw": "nanoscopeAFM__AR_20211011.ibw",
    "gwy": "SciFiDatasets__PTO_110_Virgin0001.gwy",
    "gsf": "SciFiDatasets__GwiddionReader_chip.gsf",
    "sxm": "SpmImages.jl__01514.sxm",
    "spm": "nanoscope__full_multiple_images.spm",
    "003": "nanoscopeAFM__Veeco_20160622.003",
    "tiff": "nanoscopeAFM__Park_20210916_034.tiff",
    "jpk": "AFMReader__sample_0.jpk-qi-image",
    "h5-jpk": "AFMReader__sample_0.h5-jpk",
    "stp": "AFMReader__sample_0.stp",
    "top": "AFMReader__sample_0.top",
    "nid": "nanoscopeAFM__NanoSurf_20160301.nid",
    "mdt": "SciFiDatasets__test_mdt.mdt",
    "gwyo": "SciFiDatasets__GwiddionReader_chip.gwy",
}
#: A heap allocation above this while reading a small hostile file means a header was trusted.
ALLOCATION_LIMIT = 64 << 20
#: A tiny train.py/eval.py configuration (one synthetic material, 2-layer net): seconds per run.
TINY = ["debug=tiny", "dataset=mono", "model.depth=2", "model.width=4", "logger=none", "dataset.num_workers=0",
        "dataset.materials.ceramic.n_images=5", "dataset.materials.ceramic.n_px=48"]


def sample(name: str) -> Path:
    """Path of a real sample file, or skip the test with the reason where it is absent."""
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"real AFM sample {name} not found in {SAMPLES} (set AFM_SR_SAMPLES)")
    return path


def write_npy(path: Path, array: np.ndarray, pixel_size: float = 1e-8) -> Path:
    """Save ``array`` as ``path`` (.npy) with the JSON sidecar that gives its pixel size."""
    np.save(path, array)
    path.with_suffix(".json").write_text(json.dumps({"pixel_size_m": pixel_size}), encoding="utf-8")
    return path


def surface(ny: int = 64, nx: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth random surface of a few nanometres, in meters."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:ny, 0:nx] / 8.0
    return 1e-9 * (np.sin(x) + np.cos(y) + 0.1 * rng.standard_normal((ny, nx)))


@dataclass(frozen=True)
class Refusal:
    """What a refused file produced: the error and the peak heap use (bytes) while reading it."""

    error: AFMFileError
    peak: int


def refusal(call: Callable[[], object], timeout: float = 30) -> Refusal:
    """Run ``call`` (a read of a hostile file) in a thread; return its AFMFileError and peak heap use.

    Fails if it succeeds, raises anything else, or is still running after ``timeout`` seconds (a hang; the
    daemon thread is left behind).
    """
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            call()
        except BaseException as exc:
            outcome.append(exc)

    tracemalloc.start()
    try:
        worker = threading.Thread(target=attempt, daemon=True)
        worker.start()
        worker.join(timeout)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not worker.is_alive(), f"still reading after {timeout} s: a hang"
    assert outcome, "the hostile file was accepted"
    if not isinstance(outcome[0], AFMFileError):
        raise AssertionError(f"{type(outcome[0]).__name__} escaped instead of AFMFileError") from outcome[0]
    return Refusal(outcome[0], peak)


@dataclass(frozen=True)
class CliResult:
    """Exit code and captured output of one ``afm-sr`` call made in this process."""

    code: int
    out: str
    err: str


def error_lines(err: str) -> list[str]:
    """The ``afm-sr: error:`` lines of a captured stderr (progress bars and warnings dropped)."""
    return [line for line in err.splitlines() if line.startswith("afm-sr: error:")]


def only_error(result: CliResult) -> str:
    """The one error line of a failed call: exit 2, that line alone on stderr, no traceback."""
    assert result.code == 2 and "Traceback" not in result.err, result
    assert len(error_lines(result.err)) == 1 and result.err.count("\n") == 1, result.err
    return error_lines(result.err)[0]


@contextlib.contextmanager
def small_tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted with ``options`` (``size=1m``, ``ro``, ``nr_inodes=3``) on the new ``folder``, unmounted after.

    Skips the test with the reason where it cannot be mounted (not root, or no mount permission in a container).
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; the RLIMIT_FSIZE tests cover write failures without it")
    folder.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                         text=True, check=False)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.strip() or res.returncode})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


#: train.py/eval.py runs of the reliability tests are tiny: a shorter limit than the end-to-end tests'.
run_script = partial(support.run_script, timeout=300)


def scratch_file(name: str, content: bytes) -> Callable[[Path], Path]:
    """A maker that writes ``content`` to ``<tmp>/name`` (for corpus cases built from raw bytes)."""
    def make(tmp: Path) -> Path:
        (tmp / name).write_bytes(content)
        return tmp / name
    return make
