"""HeightMap takes a pixel size as one value or a pair; as_heightmap turns what a caller hands in into one."""

from __future__ import annotations

import numpy as np
import pytest

from afm_sr.errors import InputError
from afm_sr.io import HeightMap
from afm_sr.io.heightmap import as_heightmap


@pytest.mark.parametrize(("given", "stored"), [(2e-9, (2e-9, 2e-9)), ((2e-9, 3e-9), (2e-9, 3e-9)),
                                               ([4e-9], (4e-9, 4e-9))])
def test_pixel_size_one_value_or_a_pair(given: object, stored: tuple[float, float]) -> None:
    hm = HeightMap(np.zeros((4, 6)), given)  # type: ignore[arg-type]
    assert hm.pixel_size == stored and hm.scan_size == (6 * stored[0], 4 * stored[1])


@pytest.mark.parametrize("bad", [(1e-9, 1e-9, 1e-9), 0.0, (1e-9, -1e-9), float("nan")])
def test_bad_pixel_size_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="pixel size"):
        HeightMap(np.zeros((4, 4)), bad)  # type: ignore[arg-type]


def test_as_heightmap_takes_arrays_and_overrides_pixel_sizes() -> None:
    bare = as_heightmap(np.ones((4, 4)))
    assert bare.pixel_size == (1.0, 1.0) and bare.metadata["pixel_size_unknown"]
    given = as_heightmap(np.ones((4, 4)), 1e-8)
    assert given.pixel_size == (1e-8, 1e-8) and "pixel_size_unknown" not in given.metadata
    assert as_heightmap(given, (2e-8, 3e-8)).pixel_size == (2e-8, 3e-8) and given.pixel_size == (1e-8, 1e-8)
    assert as_heightmap(given) is given


@pytest.mark.parametrize(("image", "pixel_size", "match"), [
    (np.ones((2, 2, 2)), None, "2-D"), (np.array([["a", "b"]]), None, "real numbers"),
    (np.ones((4, 4)), 5.0, "not a plausible AFM pixel size")])
def test_as_heightmap_refuses_what_is_no_height_map(image: np.ndarray, pixel_size: float | None, match: str) -> None:
    with pytest.raises(InputError, match=match):
        as_heightmap(image, pixel_size)
