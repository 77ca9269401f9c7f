"""Raw values to heights (``readers._common.scaled``, every reader's last step): float64 first, then the factor.

The dtype question, measured: a product in the file's dtype keeps float32 (NumPy 2 keeps an array's float32 when it
multiplies by a Python float) and cannot even hold int32 counts above 2**24; converting to float64 first keeps
every value to float64 rounding. On the Park TIFF sample the float32 product was 7e-8 (relative) off Gwyddion's
reading; float64 first matches it exactly (tests/io/test_io_gwyddion_reference.py).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from afm_sr.errors import AFMFileError
from afm_sr.io.readers._common import scaled

PX = (1e-9, 1e-9)


def worst_relative_error(values: np.ndarray, exact: list[Fraction]) -> float:
    """Largest |value - exact| / |exact|, computed without rounding."""
    return float(max(abs(Fraction(float(v)) - e) / abs(e) for v, e in zip(values.ravel(), exact, strict=True)))


def test_int32_counts_keep_every_digit_in_float64_not_in_float32() -> None:
    raw = np.array([[2**31 - 1, -(2**31), 123_456_789, 16_777_217, 1]], dtype=np.int32)
    exact = [Fraction(int(v)) * Fraction(1, 10**12) for v in raw.ravel()]  # counts in pm, heights in m
    ours = scaled(raw, "pm", PX, "Height", Path("scan"))
    in_file_dtype = raw.astype(np.float32) * np.float32(1e-12)  # what a float32 reader would hold
    assert ours.data.dtype == np.float64 and ours.z_unit == "m"
    assert worst_relative_error(ours.data, exact) <= 2.0**-52
    assert worst_relative_error(in_file_dtype, exact) > 2.0**-26  # 123456789 and 2**24 + 1 are not float32 numbers


def test_float32_values_times_a_unit_factor_round_to_float64_not_float32() -> None:
    raw = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32) * np.float32(300)  # nm
    exact = [Fraction(float(v)) * Fraction(1, 10**9) for v in raw.ravel()]
    ours = scaled(raw, "nm", PX, "Height", Path("scan"))
    in_file_dtype = raw * 1e-9  # NumPy 2: float32 array x Python float stays float32
    assert in_file_dtype.dtype == np.float32
    assert worst_relative_error(ours.data, exact) <= 2.0**-52
    assert 2.0**-30 < worst_relative_error(in_file_dtype, exact) <= 2.0**-23  # the factor rounds to float32 too


def test_gain_and_unit_multiply_in_float64() -> None:
    """Park TIFFs store float32 or integer raw values and a data gain; heights are raw x gain x unit."""
    raw = np.array([[3, -7], [1000, 2**20]], dtype=np.int32)
    hm = scaled(raw, "um", PX, "Topography", Path("park.tiff"), {"head_mode": "AFM"}, gain=-4.5)
    assert np.array_equal(hm.data, raw.astype(np.float64) * (-4.5 * 1e-6))
    assert (hm.z_unit, hm.metadata) == ("m", {"head_mode": "AFM"})


def test_complex_values_are_refused_with_the_channel_named() -> None:
    with pytest.raises(AFMFileError, match="channel 'Height' holds complex numbers"):
        scaled(np.ones((2, 2), dtype=np.complex64), "m", PX, "Height", Path("scan"))
