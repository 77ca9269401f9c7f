"""Many files through one model at the network's own pace: read ahead, write behind, shards, a summary table.

``afm-sr enhance`` over a folder: while the network works on one file, a thread reads the next and another writes
the previous one (numpy and torch release the GIL for the heavy parts), so the files' I/O hides behind the
network. At most one file is read ahead and one written behind, so memory grows by one input and one output.
Failures stay with their file. ``shard`` splits a file list for a SLURM array (or any scheduler); the summary
table (one row per file: pixels, self-check gain, seconds) is written atomically as CSV.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Generic, TypeVar

from afm_sr.atomic import write_atomically
from afm_sr.errors import AFMSRError

T = TypeVar("T")
Data = TypeVar("Data")
Result = TypeVar("Result")


def parse_shard(text: str) -> tuple[int, int]:
    """``I/N``, 0 <= I < N (ValueError otherwise): this run's share of the files, e.g. ``$SLURM_ARRAY_TASK_ID/8``."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"shard {text!r} must be I/N, e.g. 0/8") from None
    if not 0 <= index < count:
        raise ValueError(f"shard {text!r}: I must be 0..N-1 (N = {count} shards)")
    return index, count


def shard(items: Sequence[T], index: int, count: int) -> list[T]:
    """Every ``count``-th item from ``index`` on: shards are disjoint, cover the list and have near-equal sizes."""
    return list(items[index::count])


@dataclass(frozen=True)
class Row:
    """One file's line of the summary table (``status``: ok, skipped (its output existed) or failed)."""

    file: str
    output: str
    status: str
    input_px: str = ""
    output_px: str = ""
    self_check_gain_db: str = ""
    seconds: str = ""
    message: str = ""


def summary_csv(rows: Iterable[Row]) -> str:
    """The summary table as CSV text with a header."""
    buffer = io.StringIO()
    table = csv.writer(buffer, lineterminator="\n")
    table.writerow([f.name for f in fields(Row)])
    table.writerows(astuple(row) for row in rows)
    return buffer.getvalue()


def write_summary(rows: Iterable[Row], path: Path, overwrite: bool) -> Path:
    """Write the summary table atomically (never over an existing file without ``overwrite``)."""
    text = summary_csv(rows)
    write_atomically({path: lambda tmp: tmp.write_text(text, encoding="utf-8")}, overwrite)
    return path


@dataclass
class Done(Generic[T, Result]):
    """What ``pipelined`` yields per item: the item, its result or error, its compute step's seconds (no read wait)."""

    item: T
    result: Result | None
    error: AFMSRError | MemoryError | None
    seconds: float


def pipelined(items: Sequence[T], read: Callable[[T], Data], compute: Callable[[T, Data], Result],
              write: Callable[[T, Result], None], undo: Callable[[T], None] | None = None
              ) -> Iterator[Done[T, Result]]:
    """``write(item, compute(item, read(item)))`` for each item, in order, reading one ahead and writing one behind.

    Yields each item, in order, once its write has finished (or one of its steps failed with an AFMSRError or
    MemoryError, which stays with that item). Any other exception, or Interrupted, stops the run: the write in
    flight (which a signal cannot stop in its thread) is let finish and then, if it succeeded, handed to ``undo``
    (the caller removes that output), so what a stopped run leaves is exactly what it reported.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="afm-sr-read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix="afm-sr-write") as writer:
        reads: dict[int, Future[Data]] = {0: reader.submit(read, items[0])} if items else {}
        behind: tuple[T, Future[None], Result, float] | None = None
        try:
            for i, item in enumerate(items):
                if i + 1 < len(items):
                    reads[i + 1] = reader.submit(read, items[i + 1])
                start = time.perf_counter()
                try:
                    data = reads.pop(i).result()
                    start = time.perf_counter()
                    result = compute(item, data)
                except (AFMSRError, MemoryError) as exc:
                    failed = Done(item, None, exc, time.perf_counter() - start)
                    if behind is not None:  # items come out in order
                        finished, behind = _finished(*behind), None
                        yield finished
                    yield failed
                    continue
                del data
                seconds = time.perf_counter() - start
                if behind is not None:
                    finished, behind = _finished(*behind), None
                    yield finished
                behind = (item, writer.submit(write, item, result), result, seconds)
            if behind is not None:
                finished, behind = _finished(*behind), None
                yield finished
        finally:
            for future in reads.values():
                future.cancel()
            if behind is not None:
                wait([behind[1]])
                if undo is not None and behind[1].exception() is None:
                    undo(behind[0])


def _finished(item: T, write: Future[None], result: Result, seconds: float) -> Done[T, Result]:
    """Wait for an item's write; its Done (with the write's AFMSRError or MemoryError, if any)."""
    try:
        write.result()
    except (AFMSRError, MemoryError) as exc:
        return Done(item, None, exc, seconds)
    return Done(item, result, None, seconds)
