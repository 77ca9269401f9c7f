"""Every real sample in shared/afm-samples reads with Gwyddion's pixel count, scan size and orientation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import afm_sr.io as io
from afm_sr.errors import AFMFileError

NID = "nanoscopeAFM__NanoSurf_20160301.nid"
MDT = "SciFiDatasets__test_mdt.mdt"

# file, default channel, (ny, nx), scan width in um (Gwyddion 2.62, from the samples' README)
EXPECTED = [
    ("SciFiDatasets__IgorIBWReader_ImageStack_BTFO_DSO.ibw", "HeightRetrace", (256, 256), 2.008),
    ("SciFiDatasets__IgorIBWReader_P0089OP0027.ibw", "HeightRetrace", (256, 256), 2.008),
    ("nanoscopeAFM__AR_20211011.ibw", "HeightRetrace", (128, 128), 4.031),
    ("SciFiDatasets__PTO_110_Virgin0001.gwy", "HeightRetrace", (256, 256), 10.04),
    ("SciFiDatasets__GwiddionReader_chip.gsf", "Topography", (300, 300), 80.0),
    ("SpmImageTycoon.jl__Image_166.sxm", "Z (Forward)", (256, 256), 0.004),
    ("SpmImageTycoon.jl__Image_661.sxm", "Z (Forward)", (256, 256), 0.05),
    ("SpmImages.jl__01514.sxm", "Z (Forward)", (160, 160), 0.005),
    ("nanoscopeAFM__Park_20210916_034.tiff", "Topography", (256, 256), 2.5),
    ("TopoStats__old_bruker.002", "Height", (256, 256), 15.0),
    ("nanoAFMr__kpg20080408.007", "Height", (256, 256), 1.0),
    ("nanoscopeAFM__Veeco_20160622.003", "Height", (512, 512), 1.769),
    ("nanoscope__full_multiple_images.spm", "Height", (512, 512), 2.0),
    ("AFMReader__sample_0.jpk", "Height", (256, 256), 0.3269),
    ("AFMReader__sample_0.jpk-qi-image", "Height (measured)", (100, 100), 0.5),
    ("AFMReader__sample_0.h5-jpk", "height_trace [frame 0]", (128, 128), 0.15),
    ("AFMReader__sample_0.stp", "Topography", (512, 512), 0.5),
    ("AFMReader__sample_0.top", "Topography", (512, 512), 0.5),
    (NID, "Z-Axis forward", (128, 128), 10.0),
    ("SciFiDatasets__GwiddionReader_chip.gwy", "Unknown channel 1", (300, 300), 80.0),
]


@pytest.mark.parametrize(("name", "channel", "shape", "width_um"), EXPECTED)
def test_sample_reads_with_gwyddions_size(samples: Path, name: str, channel: str, shape: tuple[int, int],
                                          width_um: float) -> None:
    hm = io.read(samples / name)
    assert hm.channel == channel
    assert hm.shape == shape
    assert hm.data.dtype == np.float64 and hm.z_unit == "m"
    assert hm.scan_size[0] * 1e6 == pytest.approx(width_um, rel=2e-3)
    assert hm.scan_size[1] == pytest.approx(hm.scan_size[0], rel=1e-6)
    span = np.ptp(hm.data)
    assert 0 <= span < 10e-6  # heights in meters: nothing here spans 10 um of z
    if name != "SpmImages.jl__01514.sxm":  # constant-height STM scan: its Z is flat by design
        assert span > 1e-11


def test_igor_channels_and_orientation(samples: Path) -> None:
    path = samples / "nanoscopeAFM__AR_20211011.ibw"
    assert io.list_channels(path) == ["HeightRetrace", "AmplitudeRetrace", "PhaseRetrace", "ZSensorRetrace"]
    from igor2 import binarywave

    wave = binarywave.load(str(path))["wave"]["wData"]
    np.testing.assert_array_equal(io.read(path).data, np.flipud(wave[:, :, 0].T))
    assert io.read(path, channel="phase retrace").z_unit == "deg"


def test_nanoscope_matches_its_reference_export(samples: Path) -> None:
    """The jmarini/nanoscope reference is this file's Height, line-flattened, in nm, rows in file order.

    NanoScope stores the bottom line first and Gwyddion flips it (nanoscope.c), so ours is upside down.
    """
    hm = io.read(samples / "nanoscope__full_multiple_images.spm")
    ref = io.read(samples / "nanoscope__reference_converted.csv", pixel_size=2e-6 / 512, z_unit="nm")
    x = np.arange(hm.shape[1])
    fits = np.polynomial.polynomial.polyfit(x, hm.data.T, 1)
    flat = hm.data - np.polynomial.polynomial.polyval(x, fits)
    assert np.abs(flat - np.flipud(ref.data)).max() < 0.2e-9  # the reference is rounded to 0.01 nm


def test_csv_without_pixel_size_says_why(samples: Path) -> None:
    name = "nanoscope__reference_converted.csv"
    with pytest.raises(AFMFileError, match="pixel size") as info:
        io.read(samples / name)
    assert name in str(info.value)


def test_mdt_current_map_is_listed_but_is_no_height(samples: Path) -> None:
    """The NT-MDT sample's one channel is a current in A (Gwyddion: '1F:Iprobe (2)', 256 px, 3.0008 um)."""
    path = samples / MDT
    with pytest.raises(AFMFileError, match=r"no height channel among '1F:Iprobe \(2\)' \(A\)"):
        io.read(path)
    hm = io.read(path, channel="1F:Iprobe (2)")
    assert (hm.shape, hm.z_unit) == ((256, 256), "A")
    assert hm.scan_size == pytest.approx((3.00083354e-6, 3.00083354e-6), rel=1e-8)
    assert 1e-9 < hm.data.max() < 1e-7 and hm.metadata["mdt_frame_type"] == "MDA"  # tens of nA, in amperes


def test_nanosurf_channels_orientation_and_units(samples: Path) -> None:
    """Gwyddion's channel titles; rows flipped like Gwyddion's ezdfile.c; heights in m, amplitude in V."""
    path = samples / NID
    assert io.list_channels(path) == ["Z-Axis forward", "Amplitude forward", "Z-Axis backward",
                                      "Amplitude backward"]
    from NSFopen.read import nid_read

    raw = nid_read(str(path), dataframe=False).data["Image"]
    hm = io.read(path)
    np.testing.assert_array_equal(hm.data, np.flipud(raw["Forward"]["Z-Axis"]))
    assert hm.pixel_size == pytest.approx((10e-6 / 128, 10e-6 / 128))
    assert (hm.data.min(), hm.data.max()) == pytest.approx((-294.19e-9, -88.50e-9), abs=0.01e-9)
    assert hm.metadata["Scan direction"] == "Up"
    backward = io.read(path, channel="z axis backward").data  # stored left to right: not mirrored
    assert np.corrcoef(hm.data.ravel(), backward.ravel())[0, 1] > 0.5
    assert io.read(path, channel="Amplitude forward").z_unit == "V"


def test_list_channels_of_nanonis(samples: Path) -> None:
    names = io.list_channels(samples / "SpmImageTycoon.jl__Image_661.sxm")
    assert names[:2] == ["Z (Forward)", "Z (Backward)"] and "Current (Forward)" in names


def test_backward_scan_is_mirrored_to_match_forward(samples: Path) -> None:
    path = samples / "SpmImageTycoon.jl__Image_661.sxm"
    fwd, bwd = io.read(path).data, io.read(path, channel="Z (Backward)").data
    assert np.corrcoef(fwd.ravel(), bwd.ravel())[0, 1] > 0.9
