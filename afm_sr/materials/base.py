"""Materials: named sources of HR height maps (synthetic generators or folders of real files)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from afm_sr.io import HeightMap

#: A generator draws one ideal-or-measured surface: (rng, n_px, pixel_size_m) -> heights in meters.
Generator = Callable[[np.random.Generator, int, float], np.ndarray]
#: An artefact model turns a surface into what the instrument records: (rng, heights, pixel_size_m).
Artefacts = Callable[[np.random.Generator, np.ndarray, float], np.ndarray]


class Material(Protocol):
    """Anything with a name that yields a list of HR height maps."""

    name: str

    def load(self) -> list[HeightMap]:
        """Return every height map of this material (meters, with pixel size)."""
        ...


@dataclass
class SyntheticMaterial:
    """A synthetic material: ``n_images`` maps from ``generator``, seeded and reproducible.

    Each image draws its scan size uniformly from ``scan_size_m`` and uses its own child seed, so
    adding images never changes the earlier ones.
    """

    name: str
    generator: Generator
    n_images: int = 16
    n_px: int = 128
    scan_size_m: Sequence[float] = (1e-6, 5e-6)
    seed: int = 0
    artefacts: Artefacts | None = None

    def __post_init__(self) -> None:
        if self.n_images < 1 or self.n_px < 8:
            raise ValueError(f"material {self.name!r}: need n_images >= 1 and n_px >= 8")

    def image(self, index: int) -> HeightMap:
        """The ``index``-th height map of this material (independent of how many are asked for)."""
        rng = np.random.default_rng([self.seed, index, _stable_hash(self.name)])
        lo, hi = float(self.scan_size_m[0]), float(self.scan_size_m[-1])
        pixel = rng.uniform(lo, hi) / self.n_px
        heights = np.asarray(self.generator(rng, self.n_px, pixel), dtype=np.float64)
        if self.artefacts is not None:
            heights = self.artefacts(rng, heights, pixel)
        return HeightMap(heights, (pixel, pixel), channel="Height", metadata={"material": self.name,
                                                                           "index": index})

    def load(self) -> list[HeightMap]:
        """All ``n_images`` maps."""
        return [self.image(i) for i in range(self.n_images)]


def _stable_hash(text: str) -> int:
    """A hash of ``text`` that does not change between Python processes (unlike ``hash``)."""
    return int.from_bytes(text.encode()[:8].ljust(8, b"\0"), "little") % (2**31)
