"""One error family for afm-sr, so the CLI can print a clear message instead of a traceback."""

from __future__ import annotations

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
