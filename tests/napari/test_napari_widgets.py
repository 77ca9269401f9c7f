"""The afm-sr docks in napari: enhance lies over its input and equals afm_sr.enhance, check gain equals the API,
bad layers give notifications, Cancel stops the worker, side by side, profile and save."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from napari_support import NEEDS, Notes, needs_display

pytest.importorskip("napari.viewer", reason=NEEDS)
pytest.importorskip("pytestqt", reason=NEEDS)

from test_infer import surface, write_tiny_checkpoint

import afm_sr
import afm_sr.infer.adapt as adapt_module
import afm_sr.napari._widgets as widgets
from afm_sr.infer.pipeline import bicubic_upscale
from afm_sr.io import HeightMap, read
from afm_sr.napari._layers import layer_data

pytestmark = needs_display
PIXEL = (1e-8, 2e-8)  # (dx, dy) in meters: not square, so x and y cannot be swapped unseen
WAIT_MS = 60_000


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    return write_tiny_checkpoint(tmp_path / "tiny.ckpt")


def add_scan(viewer: Any, data: np.ndarray, name: str = "scan") -> Any:
    """An image layer as the afm-sr reader makes it."""
    image, kwargs, _ = layer_data(HeightMap(data, PIXEL, channel="Height"), name)
    return viewer.add_image(image, **kwargs)


def dock(viewer: Any, name: str, layer: Any = None, model: Path | None = None, **options: Any) -> Any:
    """The plugin's dock ``name`` as napari builds it, set to ``layer``, ``model`` and ``options`` (CPU)."""
    _, widget = viewer.window.add_plugin_dock_widget("afm-sr", name)
    if layer is not None:
        widget.layer.value = layer
        for key, value in {"model": model, "device": "cpu", **options}.items():
            widget.option_widgets[key].value = value
    return widget


def run(qtbot: Any, widget: Any) -> None:
    """Press Run and wait until the worker has finished (result, error or cancel all end it)."""
    widget.run()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)


def test_enhance_lies_over_the_input_and_equals_the_api(make_napari_viewer, qtbot, tiny_model: Path,
                                                        notes: Notes) -> None:
    viewer = make_napari_viewer()
    data = surface(24)
    scan = add_scan(viewer, data)
    widget = dock(viewer, "Enhance", scan, tiny_model, scale=4, tile=64)
    run(qtbot, widget)
    out = viewer.layers["scan afm-sr x4"]
    expected = afm_sr.enhance(HeightMap(data, PIXEL), scale=4, model=tiny_model, device="cpu", tile=64)
    assert out.data.shape == (96, 96) and np.array_equal(out.data, expected.data)
    np.testing.assert_allclose(out.scale, (PIXEL[1] / 4, PIXEL[0] / 4), rtol=1e-12)
    np.testing.assert_allclose(out.translate, (-3 / 8 * PIXEL[1], -3 / 8 * PIXEL[0]), rtol=1e-12)
    # the outer edges of the first and last pixels coincide: the same area of the sample, in meters
    for corner_in, corner_out in [((-0.5, -0.5), (-0.5, -0.5)), ((23.5, 23.5), (95.5, 95.5))]:
        np.testing.assert_allclose(out.data_to_world(corner_out), scan.data_to_world(corner_in), rtol=1e-12)
    assert out.metadata["heightmap"]["afm_sr_scale"] == 4 and tuple(map(str, out.units)) == ("meter", "meter")
    assert widget.progress.value == widget.progress.max > 0 and widget.run_button.enabled
    assert not notes.errors()


def test_side_by_side_and_the_profile_see_the_same_points(make_napari_viewer, qtbot, tiny_model: Path,
                                                          notes: Notes) -> None:
    viewer = make_napari_viewer()
    # heights = the world x of each pixel centre: bilinear and bicubic both reproduce a ramp exactly, so any
    # misplacement of the result by a fraction of a pixel shows up as a difference between profiles
    x_world = np.arange(24) * PIXEL[0]
    scan = add_scan(viewer, np.tile(x_world, (24, 1)))
    enhance = dock(viewer, "Enhance", scan, tiny_model, scale=2)
    run(qtbot, enhance)
    enhance.side_by_side()
    trio = [viewer.layers[n] for n in ("scan", "scan bicubic x2", "scan afm-sr x2")]
    assert list(viewer.layers)[:3] == trio and viewer.grid.enabled and tuple(viewer.grid.shape) == (1, 3)
    assert len({tuple(la.contrast_limits) for la in trio}) == 1
    np.testing.assert_array_equal(trio[1].data, bicubic_upscale(read_back(scan), 2).data)
    trio[0].contrast_limits = (0.0, 1e-7)  # one contrast: linked
    assert all(tuple(la.contrast_limits) == (0.0, 1e-7) for la in trio)

    profile = dock(viewer, "Line profile")
    profile.start_line()
    shapes = viewer.layers["profile"]
    shapes.add_lines(np.array([[5.0, 4.0], [18.0, 19.0]]))  # input pixels, well inside the scan
    distance, heights = profile.profiles()
    start, end = (np.asarray(shapes.data_to_world(p)) for p in shapes.data[-1])
    np.testing.assert_allclose(distance[-1], np.hypot(*(end - start)), rtol=1e-12)
    along_x = np.linspace(start[1], end[1], len(distance))
    np.testing.assert_allclose(heights["scan"], along_x, rtol=1e-9)
    np.testing.assert_allclose(heights["scan bicubic x2"], along_x, rtol=1e-9)
    assert set(heights) == {la.name for la in trio} and len(profile.axes.lines) == 3
    assert not notes.errors()


def read_back(layer: Any) -> HeightMap:
    """The height map a layer holds, as the widgets read it."""
    return widgets.layer_heightmap(layer)


def test_adapt_checkbox_equals_the_api(make_napari_viewer, qtbot, tiny_model: Path, notes: Notes) -> None:
    viewer = make_napari_viewer()
    data = surface(40)
    widget = dock(viewer, "Enhance", add_scan(viewer, data), tiny_model, scale=2, adapt=True)
    run(qtbot, widget)
    expected = afm_sr.enhance(HeightMap(data, PIXEL), scale=2, model=tiny_model, device="cpu", adapt=True)
    assert np.array_equal(viewer.layers["scan afm-sr x2"].data, expected.data)
    assert "self-check x2 on held-out rows" in widget.status.value and not notes.errors()


@pytest.mark.default_adaptation
def test_enhance_adapt_checkbox_follows_the_default_per_scale(make_napari_viewer, monkeypatch) -> None:
    monkeypatch.setitem(adapt_module.ADAPT_BY_DEFAULT, 4, True)  # today's default adapts nowhere: show it follows
    viewer = make_napari_viewer()
    enhance_dock, gain_dock = dock(viewer, "Enhance"), dock(viewer, "Check gain")
    ticked = {}
    for scale in (2, 4, 8):
        enhance_dock.option_widgets.scale.value = gain_dock.option_widgets.scale.value = scale
        ticked[scale] = (enhance_dock.option_widgets.adapt.value, gain_dock.option_widgets.adapt.value)
    assert ticked == {2: (False, False), 4: (True, False), 8: (False, False)}


def test_check_gain_equals_the_api(make_napari_viewer, qtbot, tiny_model: Path, notes: Notes) -> None:
    viewer = make_napari_viewer()
    data = surface(40)
    widget = dock(viewer, "Check gain", add_scan(viewer, data), tiny_model, scale=2)
    run(qtbot, widget)
    expected = afm_sr.check_gain(HeightMap(data, PIXEL), scale=2, model=tiny_model, device="cpu")
    assert widget.result == expected
    table = widget.table.to_dict("split")
    assert list(table["index"]) == ["bicubic", "afm-sr", "gain"]
    assert list(table["data"][1]) == [f"{expected.model_psnr:.2f}", f"{expected.model_ssim:.4f}"]
    assert list(table["data"][2]) == [f"{expected.psnr_gain:+.2f}", f"{expected.ssim_gain:+.4f}"]
    assert not notes.errors()


@pytest.mark.parametrize(("data", "rgb", "says"), [
    (np.zeros((16, 16, 3)), True, "is an RGB image"),
    (np.zeros((3, 16, 16)), False, "is 3-D (shape (3, 16, 16))"),
    (np.zeros((5, 6)), False, "a 5x6 image is too small for scale 4"),
    (np.full((16, 16), np.nan), False, "every value is NaN or Inf"),
], ids=["rgb", "3d", "too-small", "all-nan"])
@pytest.mark.parametrize("name", ["Enhance", "Check gain"])
def test_bad_layers_are_notifications(make_napari_viewer, notes: Notes, tiny_model: Path, name: str,
                                      data: np.ndarray, rgb: bool, says: str) -> None:
    viewer = make_napari_viewer()
    layer = viewer.add_image(data, rgb=rgb, name="bad")
    widget = dock(viewer, name, layer, tiny_model, scale=4)
    widget.run()
    assert widget.worker is None and len(viewer.layers) == 1
    [message] = notes.errors()
    assert message.startswith("afm-sr: error: ") and says in message


def test_bad_model_file_from_the_worker_is_a_notification(make_napari_viewer, qtbot, tmp_path: Path,
                                                          notes: Notes) -> None:
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"\0" * 100)
    viewer = make_napari_viewer()
    widget = dock(viewer, "Enhance", add_scan(viewer, surface(16)), junk, scale=2)
    run(qtbot, widget)
    [message] = notes.errors()
    assert message.startswith(f"afm-sr: error: {junk}: ") and len(viewer.layers) == 1
    assert widget.status.value == "failed" and widget.run_button.enabled


def test_cancel_stops_the_worker(make_napari_viewer, qtbot, tiny_model: Path, notes: Notes,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    viewer = make_napari_viewer()
    widget = dock(viewer, "Enhance", add_scan(viewer, surface(64)), tiny_model, scale=4, tile=64)  # 16 tiles
    gate = threading.Event()  # the worker waits here until Cancel is pressed, so the test cannot race it
    load = widgets.load_model
    monkeypatch.setattr(widgets, "load_model", lambda model: load(model) if gate.wait(WAIT_MS / 1000) else None)
    widget.run()
    assert widget.cancel_button.enabled and not widget.run_button.enabled
    widget.cancel()
    gate.set()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)
    assert len(viewer.layers) == 1 and widget.progress.value == 0  # stopped before its first batch was shown
    assert notes.infos() == ["afm-sr: cancelled"] and not notes.errors()
    assert widget.run_button.enabled and not widget.cancel_button.enabled and widget.status.value == "cancelled"
    monkeypatch.setattr(widgets, "load_model", load)
    run(qtbot, widget)  # and the next run works
    assert viewer.layers[-1].data.shape == (256, 256)


def test_save_writes_gwy_and_never_overwrites_unasked(make_napari_viewer, qtbot, tiny_model: Path,
                                                       tmp_path: Path, notes: Notes) -> None:
    viewer = make_napari_viewer()
    widget = dock(viewer, "Enhance", add_scan(viewer, surface(16)), tiny_model, scale=2)
    run(qtbot, widget)
    out = viewer.layers[-1]
    path = tmp_path / "scan_x2.gwy"
    assert widget.save(out, path) == path
    back = read(path)
    assert np.allclose(back.data, out.data, rtol=1e-6, atol=0) and back.z_unit == "m"
    np.testing.assert_allclose(back.pixel_size, (PIXEL[0] / 2, PIXEL[1] / 2), rtol=1e-9)
    stamp = path.stat().st_mtime_ns
    assert widget.save(viewer.layers[0], path) is None and path.stat().st_mtime_ns == stamp
    assert "exists" in notes.errors()[-1] and notes.errors()[-1].startswith(f"afm-sr: error: {path}: ")
    assert widget.save(viewer.layers[0], path, overwrite=True) == path and read(path).shape == (16, 16)


def test_unavailable_device_fails_before_the_worker(make_napari_viewer, tiny_model: Path, notes: Notes) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    viewer = make_napari_viewer()
    widget = dock(viewer, "Enhance", add_scan(viewer, surface(16)), tiny_model, scale=2, device="cuda")
    widget.run()
    [message] = notes.errors()
    assert widget.worker is None and message.startswith("afm-sr: error: device 'cuda': ")


def test_save_dialog_adds_the_chosen_suffix_and_never_replaces_unasked(make_napari_viewer, tmp_path: Path,
                                                                       notes: Notes,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    viewer = make_napari_viewer()
    widget = dock(viewer, "Enhance")
    add_scan(viewer, surface(16))
    answer = (str(tmp_path / "mine"), "TIFF (*.tiff)")  # typed without a suffix, TIFF chosen
    monkeypatch.setattr(widgets.QFileDialog, "getSaveFileName", lambda *args: answer)
    widget.save_button.clicked.emit()
    assert read(tmp_path / "mine.tiff").shape == (16, 16)
    widget.save_button.clicked.emit()  # the dialog asked about 'mine', not 'mine.tiff': refused
    assert notes.errors()[-1].startswith(f"afm-sr: error: {tmp_path / 'mine.tiff'}: ")
