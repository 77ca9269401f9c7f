"""A parameter that is either fixed or drawn per use from a [lo, hi] range: one rule for every random setting.

Synthetic materials and the instrument draw with NumPy generators, degradations with torch generators; both
hand ``draw`` their generator's uniform [0, 1) source, so a range means the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

#: A fixed number, a [lo, hi] range drawn uniformly per use, or None (0: the setting is off).
Range = float | Sequence[float] | None


def as_range(value: Range) -> float | tuple[float, float]:
    """A config value (number, [lo, hi] list or tuple, None) as a float or a ``(lo, hi)`` tuple of floats."""
    if value is None:
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    lo, hi = (float(v) for v in value)
    return (lo, hi)


def draw(uniform: Callable[[], float], value: Range) -> float:
    """The fixed value, or ``lo + (hi - lo) * uniform()`` for a range (``uniform`` is called only for a range).

    ``uniform`` returns a float in [0, 1): ``numpy_generator.random`` (which is exactly what
    ``numpy_generator.uniform(lo, hi)`` draws) or a torch generator's ``torch.rand``.
    """
    fixed_or_range = as_range(value)
    if isinstance(fixed_or_range, float):
        return fixed_or_range
    lo, hi = fixed_or_range
    return lo + (hi - lo) * uniform()
