"""The plug-in's menu entries and where its files live: plain data, no NumPy or torch (Gwyddion's start-up reads it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from afm_sr.choices import SUPPORTED_SCALES

#: The run modes every entry offers: Gwyddion's ``noninteractive`` (GWY_RUN_IMMEDIATE; no dialog of ours).
RUN_MODES = "noninteractive"


@dataclass(frozen=True)
class Entry:
    """One Data Process menu item: its Gwyddion function name, menu label, scale and method."""

    name: str
    label: str
    scale: int
    method: str  # "afm-sr" (afm_sr.enhance) or "bicubic" (afm_sr.infer.bicubic_upscale, for comparison)

    @property
    def file_name(self) -> str:
        """The launcher's file name in the plug-in folder (Gwyddion registers one entry per executable)."""
        return self.name.replace("_", "-")

    @property
    def menu(self) -> str:
        """Where Gwyddion shows it, as a user reads it."""
        return f"Data Process > Plug-Ins > afm-sr > {self.label}"

    def registration(self) -> str:
        """The three lines ``PLUGIN register`` prints and its ``.rgi`` file holds: name, menu path, run modes."""
        return f"{self.name}\n/afm-sr/{self.label}\n{RUN_MODES}\n"


ENTRIES: dict[str, Entry] = {e.name: e for e in [
    *(Entry(f"afm_sr_enhance_x{s}", f"Enhance x{s}", s, "afm-sr") for s in SUPPORTED_SCALES),
    Entry("afm_sr_bicubic_x4", "Bicubic x4 (for comparison)", 4, "bicubic"),
]}


def gwyddion_user_dir() -> Path:
    """Gwyddion's per-user folder on Linux and macOS (``gwy_get_user_dir()``: ``~/.gwyddion``)."""
    return Path.home() / ".gwyddion"


def default_plugin_dir() -> Path:
    """Where Gwyddion looks for the current user's data process plug-ins."""
    return gwyddion_user_dir() / "plugins" / "process"


def log_file() -> Path:
    """The plug-in's log: every run, and the full story of each failure Gwyddion shows in one line."""
    return gwyddion_user_dir() / "afm-sr.log"


def options_file() -> Path:
    """The plug-in's options (``key = value`` lines: model, tile, device, adapt)."""
    return gwyddion_user_dir() / "afm-sr.conf"
