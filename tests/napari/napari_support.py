"""What the napari plugin's test modules share: why they skip, and the notifications a test saw."""

from __future__ import annotations

from dataclasses import dataclass

NEEDS = "the napari extra is not installed (pip install -e '.[napari-test]')"


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
