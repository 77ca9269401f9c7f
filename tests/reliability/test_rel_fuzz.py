"""Short fuzzing of every reader with hypothesis, starting from the real samples (the long run: experiments/fuzz).

Mutations: bit flips, truncation, splices of another region, and header-field overwrites with extreme integers.
Only AFMFileError may escape ``read``/``list_channels``; a call may not allocate more than ALLOCATION_LIMIT or
work longer than CPU_LIMIT_S. Time is CPU time of this process, not wall time: on a shared CI machine a 5 s
wall-clock deadline failed a case that took 17 s of waiting, so hypothesis' own deadline is off.
"""

from __future__ import annotations

import struct
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rel_support import ALLOCATION_LIMIT, SAMPLE_PER_FORMAT, sample

from afm_sr.errors import AFMFileError
from afm_sr.io import list_channels, read

HEADER_BYTES = 1024
EXTREMES = [0, 1, -1, 2**15 - 1, 2**31 - 1, -(2**31), 10**9, 31623]
#: CPU seconds one read of a mutated sample may take (the samples read in well under 1 s).
CPU_LIMIT_S = 30
FUZZ_SETTINGS = settings(max_examples=5, deadline=None, derandomize=True, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                HealthCheck.function_scoped_fixture])


@st.composite
def mutated(draw: st.DrawFn, raw: bytes) -> bytes:
    """``raw`` with one to three random mutations, mostly in its header where the parsers make decisions."""
    data = bytearray(raw)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "splice", "field"]))
        where = draw(st.integers(0, min(len(data), HEADER_BYTES) - 1)) if draw(st.booleans()) else \
            draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[where:]
        elif kind == "splice":
            start = draw(st.integers(0, len(data) - 1))
            data[where:where] = data[start:start + draw(st.integers(1, 64))]
        elif where + 4 <= len(data):
            struct.pack_into(draw(st.sampled_from(["<i", ">i"])), data, where, draw(st.sampled_from(EXTREMES)))
        if not data:
            break
    return bytes(data)


@pytest.mark.parametrize("fmt", sorted(SAMPLE_PER_FORMAT))
def test_mutated_samples_only_raise_afm_file_error(tmp_path: Path, fmt: str) -> None:
    src = sample(SAMPLE_PER_FORMAT[fmt])
    list_channels(src)  # the lazy imports of the reader happen here, outside the allocation budget
    raw = src.read_bytes()
    target = tmp_path / src.name

    @FUZZ_SETTINGS
    @given(mutated(raw))
    def check(data: bytes) -> None:
        target.write_bytes(data)
        for call in (read, list_channels):
            tracemalloc.start()
            start = time.process_time()
            try:
                call(target)
            except AFMFileError:
                pass
            finally:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            work = time.process_time() - start
            assert peak < ALLOCATION_LIMIT, f"{call.__name__} allocated {peak / 2**20:.0f} MiB"
            assert work < CPU_LIMIT_S, f"{call.__name__} worked {work:.0f} CPU seconds"

    check()


def test_fuzzing_has_no_wall_clock_deadline() -> None:
    """Wall time depends on the machine's other load; the fuzz test must not fail on it (it measures CPU time)."""
    assert FUZZ_SETTINGS.deadline is None
