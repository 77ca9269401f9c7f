"""A material made of real AFM files in a folder, read through ``afm_sr.io`` and leveled per image."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from afm_sr.errors import AFMFileError
from afm_sr.io import HeightMap, read
from afm_sr.preprocess import level

_log = logging.getLogger(__name__)

#: Leveled heights varying by less than this fraction of the heights' level are rounding noise, not a surface
#: (float32, which most instruments store, keeps about 6e-8 of a value); z-scored, they would train on noise.
ROUNDING = 1e-6


def scan_problem(raw: np.ndarray, leveled: np.ndarray) -> str | None:
    """Why a finite scan cannot be trained on (constant, rounding noise once leveled), or None where it can.

    ``afm_sr.io.read`` has already refused NaN/Inf heights and images under 2x2 px, naming the file.
    """
    if np.ptp(raw) == 0:
        return f"the scan is constant ({float(raw.flat[0])!r} m everywhere)"
    level_m, spread = float(np.max(np.abs(raw))), float(np.ptp(leveled))
    if spread <= ROUNDING * level_m:
        return (f"the scan is constant but for rounding noise (leveled heights vary by {spread:.3g} m at a level "
                f"of {level_m:.3g} m)")
    return None


@dataclass
class FolderMaterial:
    """Every file matching ``glob`` in ``path`` (sorted by name), so real scans train like synthetic ones.

    A file that cannot be read (``afm_sr.io.read`` refuses NaN/Inf heights too), a broken symbolic link, and
    a scan that is constant or constant but for rounding noise are logged with their name and the reason and
    skipped (``skipped`` after ``load``: path -> reason); only a folder where no file can be used raises
    ``AFMFileError``. Sidecar ``.json`` files and ``index.csv`` are never taken for scans. ``pixel_size``
    (meters) serves files that do not store theirs; a reader's ``group`` metadata (rescans of one area) is
    kept so the data module splits such files together.
    """

    name: str
    path: str
    glob: str = "*"
    channel: str | None = None
    level_plane: bool = True
    align_rows: bool = False
    limit: int | None = None
    pixel_size: float | None = None
    missing_hint: str = ""  # what to do where the folder is absent (e.g. the script that builds it)
    skipped: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def files(self) -> list[Path]:
        """List the scan files (and broken links) this material reads, in name order, at most ``limit`` of them."""
        folder = Path(self.path)
        if not folder.is_dir():
            hint = f"; {self.missing_hint}" if self.missing_hint else ""
            raise AFMFileError(folder, f"material {self.name!r}: the folder does not exist{hint}")
        found = sorted(p for p in folder.glob(self.glob)
                       if (p.is_file() or (p.is_symlink() and not p.exists()))
                       and p.suffix.lower() not in (".json", ".md") and p.name != "index.csv")
        return found[: self.limit] if self.limit is not None else found

    def fingerprint(self) -> dict[str, object]:
        """What the maps depend on: reading options and each file's name, size and mtime (and index.csv's)."""
        files = self.files()
        index = Path(self.path) / "index.csv"
        stats = [(p.name, p.stat() if p.exists() else p.lstat()) for p in files + [index] * index.is_file()]
        stamps = [(name, st.st_size, st.st_mtime_ns) for name, st in stats]
        return {"path": str(Path(self.path).resolve()), "glob": self.glob, "channel": self.channel,
                "level_plane": self.level_plane, "align_rows": self.align_rows, "limit": self.limit,
                "pixel_size": self.pixel_size, "files": stamps}

    def scan(self, file: Path) -> HeightMap:
        """Read, check and level one file; AFMFileError naming it and why it cannot be trained on."""
        if file.is_symlink() and not file.exists():
            raise AFMFileError(file, f"is a broken symbolic link (to {os.readlink(file)})")
        hm = read(file, channel=self.channel, pixel_size=self.pixel_size)
        leveled = level(hm.data, plane=self.level_plane, rows=self.align_rows)
        problem = scan_problem(hm.data, leveled)
        if problem:
            raise AFMFileError(file, problem)
        hm = hm.with_data(leveled)
        hm.metadata.setdefault("group", file.stem)
        return hm

    def load(self) -> list[HeightMap]:
        """Read, check and level every file; skip (and log, and record in ``skipped``) the ones that fail."""
        files = self.files()
        maps, self.skipped = [], {}
        for file in files:
            try:
                maps.append(self.scan(file))
            except AFMFileError as exc:
                _log.warning("material %r: skipping %s: %s", self.name, file.name, exc.problem)
                self.skipped[str(file)] = exc.problem
        if not maps:
            reasons = "; ".join(f"{Path(f).name}: {why}" for f, why in list(self.skipped.items())[:5])
            what = f"none of {len(files)} files can be used ({reasons})" if files else f"no file matches {self.glob!r}"
            raise AFMFileError(Path(self.path), f"material {self.name!r}: {what}")
        return maps
