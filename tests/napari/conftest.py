"""Fixtures of the napari plugin's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from napari_support import Notes


@pytest.fixture
def notes() -> Iterator[Notes]:
    """Record napari's notifications; fail if any of them carried a traceback (an exception, not a message)."""
    from napari.utils.notifications import ErrorNotification, notification_manager

    seen: list[tuple[str, str]] = []
    tracebacks: list[str] = []

    def record(n: object) -> None:
        seen.append((str(n.severity), str(n.message)))  # type: ignore[attr-defined]
        if isinstance(n, ErrorNotification):
            tracebacks.append(str(n.message))  # type: ignore[attr-defined]

    notification_manager.notification_ready.connect(record)
    yield Notes(seen)
    notification_manager.notification_ready.disconnect(record)
    assert not tracebacks, f"an exception reached napari: {tracebacks}"
