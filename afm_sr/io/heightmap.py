"""HeightMap: the one type every reader returns and every writer takes (heights in meters)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class HeightMap:
    """A height map in SI units: ``data[row, col]`` in meters, row 0 at the top as Gwyddion shows it.

    Attributes
    ----------
    data : float64 array (ny, nx), heights in meters.
    pixel_size : (dx, dy) in meters, the distance between neighbouring pixel centres.
    channel : name of the channel read from the file (e.g. ``HeightRetrace``).
    z_unit : SI unit of ``data`` (``"m"`` for heights).
    source : path of the file the data came from, if any.
    metadata : instrument metadata that the reader found (free-form).
    """

    data: np.ndarray
    pixel_size: tuple[float, float]
    channel: str = "Height"
    z_unit: str = "m"
    source: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data, dtype=np.float64)
        if self.data.ndim != 2:
            raise ValueError(f"HeightMap data must be 2-D, got shape {self.data.shape}")
        dx, dy = (float(v) for v in self.pixel_size)
        if not (np.isfinite(dx) and np.isfinite(dy) and dx > 0 and dy > 0):
            raise ValueError(f"pixel size must be positive and finite, got {self.pixel_size}")
        self.pixel_size = (dx, dy)

    @property
    def shape(self) -> tuple[int, int]:
        """(ny, nx) pixel count."""
        return self.data.shape  # type: ignore[return-value]

    @property
    def scan_size(self) -> tuple[float, float]:
        """(width, height) of the scanned area in meters (pixel count x pixel size)."""
        ny, nx = self.data.shape
        return (nx * self.pixel_size[0], ny * self.pixel_size[1])

    def with_data(self, data: np.ndarray, pixel_size: tuple[float, float] | None = None) -> HeightMap:
        """Return a copy carrying new data (and pixel size), keeping channel, units, source and metadata."""
        return replace(
            self, data=data, pixel_size=self.pixel_size if pixel_size is None else pixel_size,
            metadata=dict(self.metadata),
        )
