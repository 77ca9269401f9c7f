"""One error family for afm-sr (one clear line instead of a traceback), and clean stops on SIGINT/SIGTERM."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class AFMSRError(Exception):
    """Base of every error afm-sr raises on purpose (bad input, bad config, bad weights)."""


class AFMFileError(AFMSRError):
    """A file could not be read or written; the message names the file and what to do."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


class InputError(AFMSRError):
    """An array cannot be processed (NaN/Inf, constant, smaller than the scale factor, ...)."""


class ConfigError(AFMSRError):
    """A configuration value is invalid (unknown scale, depth 0, no GPU for trainer.gpus, ...)."""


class OutputExistsError(AFMFileError):
    """An output would replace a file (or link) already there; only an explicit overwrite may do that."""

    def __init__(self, path: str | Path, what: str = "exists") -> None:
        self.what = what
        super().__init__(path, f"{what}; pass overwrite=True (CLI: --force) to replace it")

    def advice(self, flag: str) -> str:
        """The message with the caller's own name for the overwrite switch (``--force`` in the CLI)."""
        return f"{self.path}: {self.what}; pass {flag} to replace it"


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: unwind (``finally`` blocks remove temp files), then exit with 128 + signal."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {self.name}")


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within this block SIGINT and SIGTERM raise Interrupted, so a run stops through its cleanup code.

    Without it SIGTERM kills the process where it stands (temp files stay behind) and SIGINT raises
    KeyboardInterrupt, which libraries such as Lightning turn into their own exit. Outside the main thread
    (where handlers cannot be set) it changes nothing; forked children (DataLoader workers) get the
    KeyboardInterrupt they know how to end on.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()

    def stop(signum: int, frame: object) -> None:
        if os.getpid() != owner:
            raise KeyboardInterrupt
        raise Interrupted(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
