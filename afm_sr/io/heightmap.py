"""HeightMap: the one type every reader returns and every writer takes (heights in meters)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from afm_sr.errors import InputError

#: A pixel size as callers give it: ``(dx, dy)`` or one value for both, in meters (None: unknown or the file's).
PixelSize = tuple[float, float] | float | None
#: Pixel sizes a user may give (meters): 1 pm to 1 mm spans every AFM scan; anything else is a typo or a unit slip.
PIXEL_SIZE_RANGE = (1e-12, 1e-3)
#: Largest magnitude float32 holds: the network computes in it, and .tiff/.npy store heights in it.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def pixel_pair(value: tuple[float, float] | list[float] | float) -> tuple[float, float]:
    """``(dx, dy)`` from one value (square pixels) or a pair: the one place a scalar pixel size becomes a pair."""
    values = [float(v) for v in np.ravel(np.asarray(value, dtype=np.float64))]
    if len(values) not in (1, 2):
        raise ValueError(f"pixel size {value!r}: give one value or (dx, dy) in meters")
    return (values[0], values[-1])


def check_pixel_size(value: tuple[float, float] | list[float] | float) -> tuple[float, float]:
    """``(dx, dy)`` from one value or a pair in meters; ValueError unless each is finite and within 1 pm .. 1 mm."""
    pair = pixel_pair(value)
    lo, hi = PIXEL_SIZE_RANGE
    if not all(np.isfinite(v) and lo <= v <= hi for v in pair):
        raise ValueError(f"pixel size {', '.join(f'{v:g}' for v in dict.fromkeys(pair))} m is not a plausible AFM "
                         f"pixel size; give one or two numbers (dx, dy) in meters between {lo:g} (1 pm) and {hi:g} "
                         "(1 mm), e.g. 1e-8 for 10 nm")
    return pair


def user_pixel_size(value: PixelSize) -> tuple[float, float] | None:
    """A caller's pixel size as ``(dx, dy)`` (None stays None), or InputError unless it is finite and 1 pm .. 1 mm."""
    if value is None:
        return None
    try:
        return check_pixel_size(value)
    except (ValueError, TypeError) as exc:
        raise InputError(str(exc)) from None


def scan_size(shape: tuple[int, ...], pixel_size: tuple[float, float]) -> tuple[float, float]:
    """(width, height) of ``shape`` (..., ny, nx) pixels of ``pixel_size`` (dx, dy): the scanned area, in meters."""
    return (shape[-1] * pixel_size[0], shape[-2] * pixel_size[1])


def value_problem(data: np.ndarray, float32: bool = False) -> str | None:
    """Why ``data`` cannot be used or stored (NaN/Inf, or beyond float32 where ``float32``), or None if it can.

    Uses min/max only, so checking a large array allocates nothing of its size unless it is bad.
    """
    lo, hi = float(np.min(data)), float(np.max(data))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{int(np.count_nonzero(~np.isfinite(data)))} of {data.size} values are NaN or Inf"
    peak = max(-lo, hi)
    if float32 and peak > FLOAT32_MAX:
        return f"values reach {peak:.3g}, beyond the float32 range (+-{FLOAT32_MAX:.3g})"
    return None


@dataclass
class HeightMap:
    """A height map in SI units: ``data[row, col]`` in meters, row 0 at the top as Gwyddion shows it.

    Attributes
    ----------
    data : float64 array (ny, nx), heights in meters.
    pixel_size : (dx, dy) in meters, the distance between neighbouring pixel centres (one value: square pixels).
    channel : name of the channel read from the file (e.g. ``HeightRetrace``).
    z_unit : SI unit of ``data`` (``"m"`` for heights).
    source : path of the file the data came from, if any.
    metadata : instrument metadata that the reader found (free-form).
    """

    data: np.ndarray
    pixel_size: tuple[float, float]  # one value is taken for (v, v) and stored as that pair
    channel: str = "Height"
    z_unit: str = "m"
    source: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if np.iscomplexobj(self.data):  # a cast would silently drop the imaginary part
            raise ValueError(f"HeightMap data must be real, got {np.asarray(self.data).dtype}")
        self.data = np.asarray(self.data, dtype=np.float64)
        if self.data.ndim != 2:
            raise ValueError(f"HeightMap data must be 2-D, got shape {self.data.shape}")
        dx, dy = pixel_pair(self.pixel_size)
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
        return scan_size(self.shape, self.pixel_size)

    def with_data(self, data: np.ndarray, pixel_size: tuple[float, float] | float | None = None) -> HeightMap:
        """Return a copy carrying new data (and pixel size), keeping channel, units, source and metadata."""
        return replace(
            self, data=data, pixel_size=self.pixel_size if pixel_size is None else pixel_size,
            metadata=dict(self.metadata),
        )


def as_heightmap(image: HeightMap | np.ndarray, pixel_size: PixelSize = None) -> HeightMap:
    """A HeightMap from a HeightMap (``pixel_size`` overriding its own) or a real 2-D array in meters.

    An array without ``pixel_size`` gets 1 m per pixel and ``metadata['pixel_size_unknown']``; a bad array or
    pixel size is an InputError.
    """
    pair = user_pixel_size(pixel_size)
    if isinstance(image, HeightMap):
        return image if pair is None else image.with_data(image.data, pair)
    array = np.asarray(image)
    if array.ndim != 2:
        raise InputError(f"expected a 2-D height map, got an array of shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise InputError(f"heights must be real numbers, got dtype {array.dtype}")
    hm = HeightMap(array, pair or 1.0, channel="array")
    if pair is None:
        hm.metadata["pixel_size_unknown"] = True
    return hm
