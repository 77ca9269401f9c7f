"""Every reader against Gwyddion 2.62's own reading of the shared samples (afm-samples/gwyddion-reference/README.md).

For every sample Gwyddion opens: the same channels (name, pixels, scan size to 1e-6, unit), and the height channel
with the same values, to float rounding, in the same orientation. Where afm-sr knowingly differs, KNOWN says why
in one line (the README's reader paragraph says it too).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from support import SAMPLES

import afm_sr.io as io
from afm_sr.errors import AFMFileError
from afm_sr.io.readers.jpk import numbered

REFERENCE = SAMPLES / "gwyddion-reference"
#: Heights agree to float64 rounding: readers scale raw values in float64 (test_io_scaled.py), in another order
#: than Gwyddion for some formats (measured: at most 5.5e-16 of the range, Bruker; the Park TIFF was 7e-8 while it
#: multiplied in float32).
RTOL = 2.0**-44
#: (file, aspect) -> why afm-sr differs from Gwyddion there, in one line.
KNOWN = {
    ("AFMReader__sample_0.jpk-qi-image", "names"):
        "two pages are both 'Height (measured)'; afm-sr calls the second 'Height (measured) [2]' so --channel can "
        "pick it",
    ("AFMReader__sample_0.jpk", "default"):
        "afm-sr reads a trace before its retrace (channels.py); Gwyddion's first height channel is the retrace",
}
_ORIENTATIONS = {"flipped upside down": np.flipud, "mirrored left-right": np.fliplr,
                 "rotated by 180 degrees": lambda a: a[::-1, ::-1], "transposed": np.transpose}


def _cases() -> list:
    """One case per sample Gwyddion opens, or one skipped case saying where the reference is missing."""
    if not REFERENCE.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(
            reason=f"Gwyddion reference not found at {REFERENCE} (set AFM_SR_SAMPLES)"))]
    return sorted(p.name[: -len(".json")] for p in REFERENCE.glob("*.json"))


def _reference(name: str) -> dict:
    return json.loads((REFERENCE / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", _cases())
def test_channels_match_gwyddion(name: str) -> None:
    """Same channel names (repeats numbered, see KNOWN), pixels, scan size and unit, in Gwyddion's order."""
    ours = io.describe(SAMPLES / name).channels
    theirs = _reference(name)["channels"]
    names = [c["name"] for c in theirs]
    if (name, "names") in KNOWN:
        assert numbered(names) != names, KNOWN[name, "names"]
        names = numbered(names)
    assert [c.name for c in ours] == names
    for mine, gwy, expected in zip(ours, theirs, names, strict=True):
        assert mine.shape == (gwy["yres"], gwy["xres"]), expected
        assert mine.scan_size == pytest.approx((gwy["xreal_m"], gwy["yreal_m"]), rel=1e-6), expected
        assert mine.z_unit == gwy["z_unit"], expected


@pytest.mark.parametrize("name", _cases())
def test_height_channel_matches_gwyddion(name: str) -> None:
    """Gwyddion's height channel, read by name: same values in meters and the same orientation."""
    channel = _reference(name)["height_channel"]
    if channel is None:
        pytest.skip(f"Gwyddion finds no height channel in {name}")
    expected = np.load(REFERENCE / f"{name}.npy")
    hm = io.read(SAMPLES / name, channel=channel)
    assert (hm.channel, hm.z_unit, hm.shape) == (channel, "m", expected.shape)
    tolerance = RTOL * np.abs(expected).max()
    if not np.allclose(hm.data, expected, rtol=0, atol=tolerance):
        matches = [what for what, turn in _ORIENTATIONS.items()
                   if turn(hm.data).shape == expected.shape and np.allclose(turn(hm.data), expected, atol=tolerance)]
        offset = float(np.median(hm.data - expected))
        pytest.fail(f"{name}: heights differ from Gwyddion's by up to {np.abs(hm.data - expected).max():.3g} m "
                    f"(median {offset:.3g} m; ours span {np.ptp(hm.data):.4g} m, Gwyddion's {np.ptp(expected):.4g} m)"
                    + (f"; ours equal Gwyddion's {matches[0]}" if matches else ""))


@pytest.mark.parametrize("name", _cases())
def test_default_channel_is_gwyddions_height_channel(name: str) -> None:
    """``read`` without a channel takes Gwyddion's height channel, or says the file has none."""
    channel = _reference(name)["height_channel"]
    if channel is None:
        with pytest.raises(AFMFileError, match="no height channel among"):
            io.read(SAMPLES / name)
        return
    picked = io.read(SAMPLES / name).channel
    if (name, "default") in KNOWN:
        assert picked != channel, KNOWN[name, "default"]
    else:
        assert picked == channel
