"""What the napari plugin's test modules share: when they skip, and the notifications a test saw."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

NEEDS = "the napari extra is not installed (pip install -e '.[napari-test]')"
#: napari needs OpenGL, which offscreen Qt cannot give it. A mark (not a fixture), so that it skips before
#: pytest-qt's session-wide QApplication would abort the run without a display; a string, so that it is read
#: when each test starts, after pytest-xvfb has set DISPLAY (conftest.py may be imported before that).
needs_display = pytest.mark.skipif("not os.environ.get('DISPLAY')",
                                   reason="no X display: install Debian's xvfb so that pytest-xvfb can start one")


@dataclass
class Notes:
    """The notifications napari showed during a test, as (severity, message)."""

    seen: list[tuple[str, str]]

    def errors(self) -> list[str]:
        """Messages of error notifications."""
        return [m for s, m in self.seen if s == "error"]

    def infos(self) -> list[str]:
        """Messages of info notifications."""
        return [m for s, m in self.seen if s == "info"]
