"""A material made of real AFM files in a folder, read through ``afm_sr.io`` and leveled per image."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from afm_sr.errors import AFMFileError
from afm_sr.io import HeightMap, read
from afm_sr.preprocess import level

_log = logging.getLogger(__name__)


@dataclass
class FolderMaterial:
    """Every file matching ``glob`` in ``path`` (sorted by name), so real scans train like synthetic ones.

    A file that cannot be read is logged with its name and skipped; only a folder where no file reads
    raises ``AFMFileError``. Sidecar ``.json`` files and ``index.csv`` are never taken for scans.
    ``pixel_size`` (meters) serves files that do not store theirs; a reader's ``group`` metadata (rescans
    of one area) is kept so the data module splits such files together.
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

    def files(self) -> list[Path]:
        """List the scan files this material reads, in name order, at most ``limit`` of them."""
        folder = Path(self.path)
        if not folder.is_dir():
            hint = f"; {self.missing_hint}" if self.missing_hint else ""
            raise AFMFileError(folder, f"material {self.name!r}: the folder does not exist{hint}")
        found = sorted(p for p in folder.glob(self.glob)
                       if p.is_file() and p.suffix.lower() not in (".json", ".md") and p.name != "index.csv")
        return found[: self.limit] if self.limit is not None else found

    def fingerprint(self) -> dict[str, object]:
        """What the maps depend on: reading options and each file's name, size and mtime (and index.csv's)."""
        files = self.files()
        index = Path(self.path) / "index.csv"
        stats = [(p.name, p.stat()) for p in files + [index] * index.is_file()]
        stamps = [(name, st.st_size, st.st_mtime_ns) for name, st in stats]
        return {"path": str(Path(self.path).resolve()), "glob": self.glob, "channel": self.channel,
                "level_plane": self.level_plane, "align_rows": self.align_rows, "limit": self.limit,
                "pixel_size": self.pixel_size, "files": stamps}

    def load(self) -> list[HeightMap]:
        """Read and level every file; skip (and log) the ones that fail."""
        files = self.files()
        maps, failures = [], []
        for file in files:
            try:
                hm = read(file, channel=self.channel, pixel_size=self.pixel_size)
            except AFMFileError as exc:
                _log.warning("material %r: skipping %s: %s", self.name, file.name, exc.problem)
                failures.append(file.name)
                continue
            hm = hm.with_data(level(hm.data, plane=self.level_plane, rows=self.align_rows))
            hm.metadata.setdefault("group", file.stem)
            maps.append(hm)
        if not maps:
            what = f"none of {len(files)} files could be read ({', '.join(failures[:5])})" if files else \
                f"no file matches {self.glob!r}"
            raise AFMFileError(Path(self.path), f"material {self.name!r}: {what}")
        if failures:
            _log.warning("material %r: read %d files, skipped %d", self.name, len(maps), len(failures))
        return maps
