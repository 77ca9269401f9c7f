"""Screenshot of the afm-sr napari plugin at work, for the README (run under Xvfb, see README.md here).

Opens a real scan through the plugin's reader (the packaged synthetic sample where shared/afm-samples is
absent), enhances it x4 from the Enhance dock with the packaged model, shows input | bicubic | afm-sr side
by side, draws a line profile across a few grains and saves the window as a small PNG.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import napari
import numpy as np
from PIL import Image as PILImage
from qtpy.QtWidgets import QApplication

HERE = Path(__file__).resolve().parent
SCAN = HERE.parents[1].parent / "shared" / "afm-samples" / "SciFiDatasets__IgorIBWReader_P0089OP0027.ibw"


def wait(widget: object, timeout_s: float = 600) -> float:
    """Process Qt events until the dock's worker has finished; return the seconds it took."""
    start = time.perf_counter()
    while widget.worker is not None:  # type: ignore[attr-defined]
        QApplication.processEvents()
        time.sleep(0.02)
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError("enhance did not finish")
    return time.perf_counter() - start


def main() -> None:
    """Build the scene and write the PNG."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scan", type=Path, default=SCAN)
    parser.add_argument("--out", type=Path, default=HERE / "screenshot.png")
    parser.add_argument("--colors", type=int, default=256, help="palette size of the PNG (keeps it small)")
    args = parser.parse_args()
    # viewer.scale_bar and viewer.camera work on every napari >= 0.6; 0.9 only renamed them
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1900, 1000)
    if args.scan.is_file():
        [scan] = viewer.open(args.scan, plugin="afm-sr")
    else:
        [scan] = viewer.open_sample("afm-sr", "ceramic")
    viewer.scale_bar.visible = True
    viewer.scale_bar.ticks = False
    _, enhance = viewer.window.add_plugin_dock_widget("afm-sr", "Enhance")
    _, profile = viewer.window.add_plugin_dock_widget("afm-sr", "Line profile", tabify=False)
    for dock in (enhance, profile):
        dock.native.setMaximumWidth(480)
    profile.canvas.setMinimumHeight(330)
    enhance.layer.value = scan
    enhance.option_widgets.scale.value = 4
    enhance.run()
    print(f"enhance x4 of {scan.data.shape[1]}x{scan.data.shape[0]} px: {wait(enhance):.1f} s")
    enhance.side_by_side()

    # zoom on a 0.6 um square in the middle, where the x4 detail shows, and draw a profile across it
    ny, nx = scan.data.shape
    centre = np.asarray(scan.data_to_world((ny / 2, nx / 2)))
    side = 0.6e-6
    profile.start_line()
    shapes = viewer.layers["profile"]
    a = shapes.world_to_data(centre - np.array((0.3, 0.45)) * side)
    b = shapes.world_to_data(centre + np.array((0.3, 0.45)) * side)
    shapes.add_lines(np.array([a, b]), edge_width=3)
    shapes.mode = "pan_zoom"
    viewer.layers.selection.active = viewer.layers[enhance.last[1].name]
    viewer.camera.center = tuple(centre)
    viewer.camera.zoom = viewer.camera.zoom * (scan.data_to_world((ny, nx))[1] - scan.data_to_world((0, 0))[1]) / side
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.05)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    PILImage.fromarray(shot[..., :3]).quantize(args.colors).save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB, {shot.shape[1]}x{shot.shape[0]} px)")
    viewer.close()


if __name__ == "__main__":
    main()
