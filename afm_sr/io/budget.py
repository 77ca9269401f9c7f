"""The memory budget: refuse a read, an enhancement or a write whose arrays would not fit, before allocating them.

A 1 MB deflate TIFF or .npz can expand to gigabytes and an x8 enhancement of a large scan asks for 64 times
its pixels, so every size announced by a header or implied by a request is checked against one limit:
``memory_limit`` (API), ``--memory-limit`` (CLI), else the ``AFM_SR_MEMORY_LIMIT`` environment variable,
else half of the memory available when the check runs. Sizes are numbers of bytes with an optional binary
suffix (``512M``, ``4G``, ``1.5GiB``). The estimates count afm-sr's own arrays, not the Python and PyTorch
runtime (a few hundred MB) or the model's weights.

Readers call ``reserve`` through ``check_dims`` before decoding an image; ``read`` opens a ``memory_budget``
so that every channel of one file counts against the same limit.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from afm_sr.errors import AFMFileError, InputError

ENV = "AFM_SR_MEMORY_LIMIT"
#: Share of the available memory that one afm-sr call may plan to use when no limit is given.
DEFAULT_FRACTION = 0.5
#: Assumed when the operating system does not say how much memory is available.
FALLBACK_AVAILABLE = 4 << 30
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmgt]?)(?:i?b)?\s*", re.IGNORECASE)
#: Largest limit accepted (1 EiB): more is no machine's memory, a typo such as 1e400 or a unit given twice.
MAX_SIZE = 1 << 60
#: How to raise the limit, for every message that refuses something.
RAISE_HINT = f"raise the limit with --memory-limit SIZE (Python: memory_limit=SIZE) or {ENV}=SIZE, e.g. 16G"


def parse_size(text: str | int) -> int:
    """Bytes from ``'512M'``, ``'4G'``, ``'1.5GiB'`` or a plain number (suffixes are powers of 1024).

    Raises ValueError for anything else, a size under 1 MiB (surely a missing suffix) or over 1 EiB (1e400 would
    overflow to infinity).
    """
    match = _SIZE.fullmatch(str(text))
    if match is None:
        raise ValueError(f"{text!r} is not a size; give bytes with an optional K/M/G/T suffix, e.g. 8G")
    size = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if size < _UNITS["m"]:
        raise ValueError(f"{text!r} is under 1 MiB; did you forget the unit (e.g. 512M, 8G)?")
    if not math.isfinite(size) or size > MAX_SIZE:
        raise ValueError(f"{text!r} is more than 1 EiB, more memory than any machine has; give a real size, e.g. 64G")
    return int(size)


def format_size(nbytes: float) -> str:
    """``3.2 GiB``, ``512.0 MiB``: a byte count for a message."""
    for shift, unit in ((40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")):
        if nbytes >= 1 << shift:
            return f"{nbytes / (1 << shift):.1f} {unit}"
    return f"{int(nbytes)} B"


def available_memory() -> int:
    """Bytes of memory available to a new allocation now (Linux ``MemAvailable``, else free physical pages)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return FALLBACK_AVAILABLE


@dataclass(frozen=True)
class Limit:
    """A memory limit in bytes and where it came from (said in every refusal)."""

    nbytes: int
    origin: str


def resolve_limit(limit: int | str | None = None) -> Limit:
    """The limit a call works under: ``limit`` if given, else ``$AFM_SR_MEMORY_LIMIT``, else half the available memory.

    Raises InputError for a value that is not a size.
    """
    if limit is not None:
        source, text = "given", limit
    elif os.environ.get(ENV):
        source, text = ENV, os.environ[ENV]
    else:
        available = available_memory()
        return Limit(int(available * DEFAULT_FRACTION), f"default: half of the {format_size(available)} available")
    try:
        return Limit(parse_size(text), f"{source}: {text}")
    except ValueError as exc:
        raise InputError(f"memory limit ({source}): {exc}") from None


@dataclass
class _Budget:
    """A limit and what one call has already planned to hold under it."""

    limit: Limit
    used: int = 0


_CURRENT: ContextVar[_Budget | None] = ContextVar("afm_sr_memory_budget", default=None)


@contextmanager
def memory_budget(limit: int | str | None = None) -> Iterator[None]:
    """Within this block, every ``reserve`` adds to one running total checked against ``limit``."""
    token = _CURRENT.set(_Budget(resolve_limit(limit)))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def headroom(limit: int | str | None = None) -> int:
    """Bytes still free under the limit (inside ``memory_budget``: after what was reserved), to size work to fit."""
    budget = _CURRENT.get()
    if budget is None or limit is not None:
        return resolve_limit(limit).nbytes
    return budget.limit.nbytes - budget.used


def reserve(nbytes: int, what: str, path: Path | None = None, limit: int | str | None = None) -> None:
    """Count ``nbytes`` that ``what`` is about to allocate; refuse (before allocating) if the total passes the limit.

    Inside ``memory_budget`` the bytes add up across calls; outside, ``limit`` (or the default) bounds this one
    request. The error is AFMFileError naming ``path`` where one is given, else InputError.
    """
    budget = _CURRENT.get()
    if budget is None or limit is not None:
        budget = _Budget(resolve_limit(limit))
    if budget.used + nbytes > budget.limit.nbytes:
        problem = (f"{what} needs about {format_size(nbytes)}"
                   + (f" (on top of {format_size(budget.used)} already read)" if budget.used else "")
                   + f", more than the memory limit of {format_size(budget.limit.nbytes)} ({budget.limit.origin}); "
                   + RAISE_HINT)
        raise AFMFileError(path, problem) if path is not None else InputError(problem)
    budget.used += nbytes
