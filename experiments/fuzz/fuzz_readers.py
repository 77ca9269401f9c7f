"""Coverage-guided fuzzing of every afm_sr.io reader with atheris, seeded with the real samples.

    python experiments/fuzz/fuzz_readers.py -max_total_time=300 [-rss_limit_mb=3072] [other libFuzzer flags]

Each input is one byte choosing the file suffix (hence the reader) followed by the file's bytes; the seed
corpus is every readable file of ``shared/afm-samples`` (or ``$AFM_SR_SAMPLES``) plus a small ``.npy``/``.npz``
made here. Each execution writes the bytes to a temp file and calls ``afm_sr.io.read`` and ``list_channels``.
A finding is any exception other than ``AFMFileError`` (a crash), an ``AFMFileError`` caused by ``MemoryError``
(a header-driven allocation that should have been refused; the address space is capped at 4 GiB), a call
interrupted after 20 s (a hang: SIGALRM raises inside the loop, so the run goes on) or one slower than 5 s.
Findings are de-duplicated by exception type and innermost library frame and are not fatal, so one run counts
them all; ``results.json`` in the temp work folder (also libFuzzer's ``-artifact_prefix``) and the periodic
SUMMARY lines give executions and findings per reader.
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import atheris
import numpy as np

with atheris.instrument_imports(include=["afm_sr", "igor2", "gwyfile", "tifffile", "pySPM", "AFMReader"]):
    from afm_sr.errors import AFMFileError
    from afm_sr.io import list_channels, read

REPO = Path(__file__).resolve().parents[2]
SAMPLES = Path(os.environ.get("AFM_SR_SAMPLES", REPO.parent / "shared" / "afm-samples"))
#: Suffixes the first input byte chooses from (modulo their number); each picks one reader.
SUFFIXES = (".ibw", ".gwy", ".gsf", ".sxm", ".spm", ".003", ".tiff", ".jpk", ".h5-jpk", ".stp", ".top", ".mdt", ".npy",
            ".npz", ".csv")
SLOW_S = 5.0
HANG_S = 20
ADDRESS_SPACE = 4 << 30
REPORT_EVERY = 500

executions: Counter[str] = Counter()
findings: dict[str, dict[str, object]] = {}
work = Path(tempfile.mkdtemp(prefix="afm-sr-fuzz-"))
results_path = work / "results.json"


class Hang(BaseException):
    """Raised by SIGALRM inside a call that runs longer than HANG_S (BaseException: readers cannot swallow it)."""


def _alarm(signum: int, frame: object) -> None:
    raise Hang(f"still running after {HANG_S} s")


def _seed_bytes() -> list[bytes]:
    """One seed per readable sample (suffix byte + content) and a small .npy and .npz made here."""
    seeds = []
    for path in sorted(SAMPLES.glob("*")):
        suffix = next((s for s in SUFFIXES if path.name.lower().endswith(s)), None)
        if suffix is None and path.suffix in (".002", ".007"):
            suffix = ".003"
        if suffix is not None:
            seeds.append(bytes([SUFFIXES.index(suffix)]) + path.read_bytes())
    array = np.linspace(0, 1e-9, 64, dtype=np.float32).reshape(8, 8)
    npy, npz = io.BytesIO(), io.BytesIO()
    np.save(npy, array)
    np.savez(npz, Height=array, pixel_size_m=np.array([1e-9, 1e-9]))
    return [*seeds, bytes([SUFFIXES.index(".npy")]) + npy.getvalue(),
            bytes([SUFFIXES.index(".npz")]) + npz.getvalue()]


def _signature(exc: BaseException) -> str:
    """Exception type and the innermost frame outside the standard library: what makes two findings the same."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "python3." not in f.filename
              or "site-packages" in f.filename]
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    return f"{type(exc).__name__} at {where}"


def _record(suffix: str, kind: str, exc: BaseException | None, data: bytes, seconds: float) -> None:
    """Keep the first input of each new finding and print it."""
    key = f"{suffix} {kind}: {_signature(exc) if exc is not None else f'{seconds:.1f} s'}"
    if key in findings:
        findings[key]["count"] += 1  # type: ignore[operator]
        return
    sample = work / f"finding-{len(findings):03d}{suffix}"
    sample.write_bytes(data)
    findings[key] = {"count": 1, "input": str(sample),
                     "message": "" if exc is None else f"{type(exc).__name__}: {str(exc)[:300]}"}
    print(f"NEW FINDING {key} -> {sample}\n    {findings[key]['message']}", flush=True)
    _dump()


def _dump() -> None:
    """Write executions and findings per reader to results.json and print one summary line."""
    total = sum(executions.values())
    results_path.write_text(json.dumps({"executions": total, "per_suffix": dict(executions),
                                        "findings": findings}, indent=1), encoding="utf-8")
    print(f"SUMMARY executions={total} findings={len(findings)} per_suffix={dict(executions)}", flush=True)


def test_one_input(data: bytes) -> None:
    """Write ``data[1:]`` with the suffix ``data[0]`` chooses; read it and list its channels."""
    if not data:
        return
    suffix = SUFFIXES[data[0] % len(SUFFIXES)]
    path = work / f"input{suffix}"
    path.write_bytes(data[1:])
    executions[suffix] += 1
    for call in (lambda: read(path, pixel_size=1e-9, z_unit="nm"), lambda: list_channels(path)):
        start = time.perf_counter()
        signal.alarm(HANG_S)
        try:
            call()
        except AFMFileError as exc:
            if isinstance(exc.__cause__, MemoryError):
                _record(suffix, "huge allocation", exc, data[1:], 0.0)
        except Hang as exc:
            _record(suffix, "hang", exc, data[1:], HANG_S)
        except Exception as exc:  # the finding this fuzzer looks for
            _record(suffix, "crash", exc, data[1:], 0.0)
        finally:
            signal.alarm(0)
        seconds = time.perf_counter() - start
        if seconds > SLOW_S:
            _record(suffix, "slow", None, data[1:], seconds)
    if sum(executions.values()) % REPORT_EVERY == 0:
        _dump()


def main() -> None:
    """Seed the corpus, cap the address space and run libFuzzer with the given flags."""
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    signal.signal(signal.SIGALRM, _alarm)
    corpus = work / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(_seed_bytes()):
        (corpus / f"seed{i:02d}").write_bytes(seed)
    print(f"work folder {work}; results in {results_path}", flush=True)
    max_len = max(p.stat().st_size for p in corpus.iterdir())
    atheris.Setup([sys.argv[0], f"-max_len={max_len}", "-timeout=120", f"-artifact_prefix={work}/", *sys.argv[1:],
                   str(corpus)], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
