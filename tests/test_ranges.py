"""``afm_sr.ranges``: one rule for a setting that is fixed, a [lo, hi] range drawn per use, or off."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from afm_sr.ranges import as_range, draw


def never() -> float:
    raise AssertionError("a fixed value must not consume a random draw")


@pytest.mark.parametrize(("value", "expected"), [(None, 0.0), (0, 0.0), (2, 2.0), (2.5, 2.5)])
def test_fixed_values_and_off_draw_nothing(value: float | None, expected: float) -> None:
    assert as_range(value) == expected and isinstance(as_range(value), float)
    assert draw(never, value) == expected


@pytest.mark.parametrize("value", [[1, 3], (1.0, 3.0)])
def test_a_range_maps_the_uniform_draw_onto_lo_hi(value: list | tuple) -> None:
    assert as_range(value) == (1.0, 3.0)
    assert [draw(lambda u=u: u, value) for u in (0.0, 0.25, 0.5)] == [1.0, 1.5, 2.0]


def test_numpy_draws_are_exactly_generator_uniform() -> None:
    """Materials and the instrument draw as ``rng.uniform(lo, hi)`` did, value for value, stream in step."""
    ours, theirs = np.random.default_rng(7), np.random.default_rng(7)
    for lo, hi in [(0.0, 1.0), (2e-9, 15e-9), (-3.0, 0.5), (0.25e-6, 0.9e-6)]:
        assert draw(ours.random, [lo, hi]) == theirs.uniform(lo, hi)
    assert ours.random() == theirs.random()


def test_torch_draws_stay_in_range_and_follow_the_generator() -> None:
    def uniform(g: torch.Generator) -> float:
        return float(torch.rand((), generator=g))

    a, b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    values = [draw(lambda: uniform(a), (0.0, 0.05)) for _ in range(50)]
    assert all(0.0 <= v < 0.05 for v in values) and len(set(values)) == 50
    assert values == [draw(lambda: uniform(b), [0.0, 0.05]) for _ in range(50)]


@pytest.mark.parametrize("value", [[1.0], [1.0, 2.0, 3.0], "ab"])
def test_anything_but_a_number_or_a_pair_is_refused(value: object) -> None:
    with pytest.raises(ValueError):
        as_range(value)  # type: ignore[arg-type]
