"""afm-sr's errors as napari notifications: the one line the CLI prints, never a traceback dialog."""

from __future__ import annotations

from napari.utils.notifications import show_error

from afm_sr.errors import AFMSRError


def error_line(exc: AFMSRError) -> str:
    """``afm-sr: error: ...`` as the CLI prints it."""
    return f"afm-sr: error: {exc}"


def notify_error(exc: AFMSRError) -> None:
    """Show ``exc`` as an error notification in the viewer."""
    show_error(error_line(exc))
