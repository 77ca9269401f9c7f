"""The afm-sr napari reader and sample data: real AFM files as image layers in meters, errors as notifications."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from napari_support import NEEDS, Notes, needs_display

pytest.importorskip("napari.viewer", reason=NEEDS)
pytest.importorskip("pytestqt", reason=NEEDS)

from npe2 import PluginManifest

from afm_sr.errors import AFMSRError
from afm_sr.io import FORMATS, describe, read
from afm_sr.io.formats import format_by_name
from afm_sr.napari._reader import NO_LAYER, SAMPLE, get_reader

pytestmark = needs_display
REPO = Path(__file__).resolve().parents[2]
SAMPLES = Path(os.environ.get("AFM_SR_SAMPLES", REPO.parent / "shared" / "afm-samples"))
SAMPLE_FILES = sorted(p for p in SAMPLES.glob("*") if p.is_file() and p.name != "README.md")


def test_plugin_is_registered_and_covers_every_format() -> None:
    manifest = PluginManifest.from_distribution("afm-sr")
    patterns = set(manifest.contributions.readers[0].filename_patterns)
    assert {f"*{s}" for fmt in FORMATS for s in fmt.suffixes} | {"*.[0-9][0-9][0-9]"} == patterns


def test_afm_sr_and_its_cli_never_import_napari() -> None:
    code = ("import sys, afm_sr, afm_sr.cli, afm_sr.io, afm_sr.infer; "
            "bad = [m for m in sys.modules if m.split('.')[0] == 'napari' or m.startswith('afm_sr.napari')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_reader_on_real_files(path: Path, notes: Notes) -> None:
    reader = get_reader(str(path))
    if format_by_name(path) is None:
        assert reader is None  # napari asks other plugins
        return
    assert reader is not None
    layers = reader(str(path))
    try:
        hm = read(path)
    except AFMSRError as exc:  # the same one line as the CLI, as a notification, and no layer
        assert layers == NO_LAYER and notes.errors() == [f"afm-sr: error: {exc}"]
        return
    [(data, kwargs, kind)] = layers
    assert kind == "image" and np.array_equal(data, hm.data) and data.dtype == np.float64
    assert kwargs["scale"] == (hm.pixel_size[1], hm.pixel_size[0]) and kwargs["units"] == ("m", "m")
    assert kwargs["metadata"]["file"] == str(path) and kwargs["metadata"]["units"] == "m"
    assert kwargs["metadata"]["channel"] == describe(path).channel.name  # what `afm-sr info` picks
    assert not notes.seen


def test_open_in_viewer_scale_bar_in_meters(make_napari_viewer, notes: Notes) -> None:
    path = SAMPLES / "SciFiDatasets__IgorIBWReader_P0089OP0027.ibw"
    if not path.is_file():
        pytest.skip(f"real AFM samples not found at {SAMPLES} (set AFM_SR_SAMPLES)")
    viewer = make_napari_viewer()
    [layer] = viewer.open(path, plugin="afm-sr")
    hm = read(path)
    assert layer.data.shape == (256, 256) and layer.metadata["channel"] == "HeightRetrace"
    assert tuple(str(u) for u in layer.units) == ("meter", "meter")
    np.testing.assert_allclose(layer.scale, (hm.pixel_size[1], hm.pixel_size[0]))
    # the world is in meters: the scan's far corner is 256 pixels of 7.84 nm from its near one
    far, near = layer.data_to_world((255.5, 255.5)), layer.data_to_world((-0.5, -0.5))
    np.testing.assert_allclose(np.subtract(far, near), hm.scan_size[::-1], rtol=1e-12)
    assert not notes.seen


def test_broken_file_is_a_notification(make_napari_viewer, notes: Notes, tmp_path: Path) -> None:
    bad = tmp_path / "broken.ibw"
    bad.write_bytes(b"not an igor wave at all" * 10)
    viewer = make_napari_viewer()
    assert viewer.open(bad, plugin="afm-sr") == []
    assert len(viewer.layers) == 0
    [message] = notes.errors()
    assert message.startswith(f"afm-sr: error: {bad}: ")


def test_sample_data_has_its_pixel_size(make_napari_viewer, notes: Notes) -> None:
    viewer = make_napari_viewer()
    [layer] = viewer.open_sample("afm-sr", "ceramic")
    hm = SAMPLE.image(0)
    assert layer.data.shape == (256, 256) and np.array_equal(layer.data, hm.data)
    np.testing.assert_allclose(layer.scale, (4e-6 / 256, 4e-6 / 256))
    assert 1e-9 < np.ptp(layer.data) < 1e-5 and not notes.seen  # heights in meters
