"""The afm-sr docks: enhance (with side by side and save), check gain, and the line profile.

Enhance and check gain run ``afm_sr.enhance`` / ``afm_sr.check_gain`` in a worker thread. Its
``progress(done, total)`` callback drives the progress bar and is where Cancel stops the run: it raises
``CancelledError`` between two batches of tiles. Bad layers and bad options end as one ``afm-sr: error: ...``
notification, never a traceback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
    Table,
    Widget,
    create_widget,
)
from napari.layers import Image, Layer, Shapes
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QFileDialog
from scipy.ndimage import map_coordinates

from afm_sr.choices import DEVICES, PRECISIONS, SUPPORTED_SCALES
from afm_sr.degrade import check_scale
from afm_sr.errors import AFMSRError, InputError
from afm_sr.infer import GainResult, check_gain, enhance, load_model, resolve_device, resolve_precision
from afm_sr.infer import adapt as own
from afm_sr.infer.pipeline import DEFAULT_TILE, bicubic_upscale
from afm_sr.io import HeightMap, write
from afm_sr.napari._layers import layer_data, layer_heightmap, upscaled_geometry
from afm_sr.napari._notify import notify_error
from afm_sr.preprocess import level

if TYPE_CHECKING:
    from napari.viewer import Viewer

log = logging.getLogger(__name__)

#: Heights are shown in nm, distances in µm, as AFM software does.
NM, UM = 1e9, 1e6
#: Where the side-by-side shared contrast clips, in percent of the input's heights.
CONTRAST_PERCENTILES = (0.5, 99.5)
#: Most points a profile samples along its line.
MAX_PROFILE_POINTS = 4096


class CancelledError(Exception):
    """The user pressed Cancel: raised by the progress callback, between two batches of tiles."""


class _Relay(QObject):
    """Carries ``progress(done, total)`` from the worker thread to the progress bar on the Qt thread."""

    progress = Signal(int, int)


def model_options() -> list[Widget]:
    """The run options, each named as the ``afm_sr.enhance``/``check_gain`` parameter it sets.

    ``RunDock.options()`` passes them on by name, so one more option (say an ``adapt`` checkbox) is one
    more widget here.
    """
    return [
        ComboBox(name="scale", choices=list(SUPPORTED_SCALES), value=4, tooltip="scale factor"),
        FileEdit(name="model", label="model file", filter="*.safetensors *.ckpt", nullable=True,
                 tooltip="a train.py checkpoint or exported .safetensors; empty: the packaged model"),
        CheckBox(name="level_plane", text="level plane", value=False,
                 tooltip="subtract the least-squares plane first"),
        CheckBox(name="adapt", text="adapt to this scan", value=False,
                 tooltip="fine-tune a copy of the model on the scan's own pairs first (seconds to a minute on a "
                         "CPU); used where it beats the model on held-out scan lines; Enhance ticks it where "
                         "afm-sr enhance adapts by default (nowhere today: it lost on real scan/zoom pairs)"),
        SpinBox(name="tile", label="tile (px)", min=0, max=8192, step=32, value=0,
                tooltip=f"output tile side, 0 = {DEFAULT_TILE} (the whole image where it fits the memory limit, "
                        "else the largest strips); bounds memory, the result does not depend on it"),
        ComboBox(name="device", choices=list(DEVICES), value="auto"),
        ComboBox(name="precision", choices=list(PRECISIONS), value="32", tooltip="convolution precision"),
    ]


class RunDock(Container):
    """A dock that runs one afm-sr function on an image layer in a worker, with progress and Cancel.

    Subclasses say what runs (``job``) and add their own buttons; this class owns the worker's life.
    """

    run_text = "Run"
    #: The adapt checkbox follows ``ADAPT_BY_DEFAULT`` for the chosen scale (as ``enhance`` does), else stays off.
    adapt_follows_default = False

    def __init__(self, napari_viewer: Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.layer = create_widget(annotation=Image, name="layer", label="image layer")
        self.option_widgets = Container(widgets=model_options(), name="options")
        self.run_button = PushButton(text=self.run_text)
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(value=0, min=0, max=1, label="tiles")
        self.status = Label(value="")
        self.extend([self.layer, self.option_widgets, Container(widgets=[self.run_button, self.cancel_button],
                                                                 layout="horizontal", labels=False),
                     self.progress, self.status])
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self.worker: Any = None
        self._cancel = threading.Event()
        self._relay = _Relay()
        self._relay.progress.connect(self._show_progress)
        if self.adapt_follows_default:
            scale, adapt = self.option_widgets.scale, self.option_widgets.adapt
            scale.changed.connect(lambda value: setattr(adapt, "value", own.ADAPT_BY_DEFAULT.get(int(value), False)))
            adapt.value = own.ADAPT_BY_DEFAULT.get(int(scale.value), False)

    def options(self) -> dict[str, Any]:
        """The options as keyword arguments of ``afm_sr.enhance``/``check_gain`` (no model file: the default)."""
        values = {w.name: w.value for w in self.option_widgets}
        values["model"] = "default" if values["model"] is None else str(values["model"])
        values["tile"] = values["tile"] or DEFAULT_TILE  # 0: the pipeline's automatic tile size
        return values

    def job(self, hm: HeightMap, layer: Image, opts: dict[str, Any]
            ) -> tuple[Callable[..., Any], Callable[[Any], None]]:
        """``(work, done)``: ``work(progress)`` runs in the worker, ``done(result)`` back on the Qt thread."""
        raise NotImplementedError

    def run(self) -> None:
        """Check the layer and options, then start the job in a worker (one at a time)."""
        if self.worker is not None:
            return
        try:
            layer, opts = self.layer.value, self.options()
            hm = layer_heightmap(layer)
            # what fails fast fails here, before the worker starts: a layer too small, no such device
            check_scale(opts["scale"], hm.shape)
            resolve_precision(opts["precision"], resolve_device(opts["device"]))
            work, done = self.job(hm, layer, opts)
        except AFMSRError as exc:
            notify_error(exc)
            return
        self._cancel.clear()
        self.progress.max, self.progress.value = 1, 0
        # Connected before the thread starts, so no result can arrive before napari and we listen.
        self.worker = create_worker(work, self._progress_callback, _start_thread=False,
                                    _connect={"returned": done, "errored": self._failed,
                                              "finished": self._finished})
        self._set_running(True, "running…")
        self.worker.start()

    def cancel(self) -> None:
        """Ask the running job to stop after its current batch of tiles."""
        if self.worker is not None:
            self._cancel.set()
            self.status.value = "cancelling…"

    def _progress_callback(self, done: int, total: int) -> None:
        """In the worker: stop if Cancel was pressed, else report progress to the Qt thread."""
        if self._cancel.is_set():
            raise CancelledError
        self._relay.progress.emit(done, total)

    def _show_progress(self, done: int, total: int) -> None:
        """Move the progress bar (Qt thread)."""
        self.progress.max = total
        self.progress.value = done

    def _failed(self, exc: Exception) -> None:
        """Cancel as information, afm-sr's errors as their one line, anything else with its type (logged)."""
        self.status.value = "cancelled" if isinstance(exc, CancelledError) else "failed"
        if isinstance(exc, CancelledError):
            show_info("afm-sr: cancelled")
        elif isinstance(exc, AFMSRError):
            notify_error(exc)
        else:
            log.error("afm-sr failed", exc_info=exc)
            show_error(f"afm-sr: error: {type(exc).__name__}: {exc}")

    def _finished(self) -> None:
        """The worker is done (result, error or cancel): ready for the next run."""
        self.worker = None
        self._set_running(False)

    def _set_running(self, running: bool, status: str | None = None) -> None:
        """Enable Run or Cancel (and show ``status``)."""
        self.run_button.enabled = not running
        self.cancel_button.enabled = running
        if status is not None:
            self.status.value = status


class EnhanceWidget(RunDock):
    """Enhance an image layer by 2/4/8; the result lies over the input, in the same µm."""

    run_text = "Enhance"
    adapt_follows_default = True

    def __init__(self, napari_viewer: Viewer) -> None:
        super().__init__(napari_viewer)
        self.side_button = PushButton(text="Side by side", enabled=False,
                                      tooltip="input | bicubic | afm-sr in a grid, one shared contrast")
        self.save_button = PushButton(text="Save selected layer…", tooltip=".gwy (Gwyddion), .tiff, .npy or .txt")
        self.extend([Container(widgets=[self.side_button, self.save_button], layout="horizontal", labels=False)])
        self.side_button.changed.connect(self.side_by_side)
        self.save_button.changed.connect(self._save_dialog)
        #: The last run: (input layer, result layer, the height map it enhanced, scale).
        self.last: tuple[Image, Image, HeightMap, int] | None = None

    def job(self, hm: HeightMap, layer: Image, opts: dict[str, Any]
            ) -> tuple[Callable[..., Any], Callable[[Any], None]]:
        """Enhance ``hm`` in the worker; add the result over ``layer`` when done."""
        s = opts["scale"]

        def work(progress: Callable[[int, int], None]) -> tuple[HeightMap, str | None]:
            model = load_model(opts["model"])
            return enhance(hm, progress=progress, **{**opts, "model": model}), model.info.gain_warning(s)

        def done(result: tuple[HeightMap, str | None]) -> None:
            out, warning = result
            if warning:
                show_warning(f"afm-sr: {warning}")
            leveled = hm.with_data(level(hm.data)) if opts["level_plane"] else hm
            self.last = (layer, self.add_upscaled(layer, out, s, "afm-sr"), leveled, s)
            self.side_button.enabled = True
            self.status.value = f"{hm.shape[1]}x{hm.shape[0]} -> {out.shape[1]}x{out.shape[0]} px"
            if "afm_sr_self_check" in out.metadata:
                self.status.value += f"; {out.metadata['afm_sr_self_check']}"

        return work, done

    def add_upscaled(self, source: Image, hm: HeightMap, s: int, method: str) -> Image:
        """Add (or replace) ``<source> <method> x<s>``: ``hm`` laid exactly over ``source``."""
        return self._put(hm, f"{source.name} {method} x{s}", upscaled_geometry(source, s))

    def _put(self, hm: HeightMap, name: str, geometry: dict[str, Any]) -> Image:
        """Add ``hm`` as the image layer ``name`` in ``geometry``, replacing a layer of that name."""
        data, kwargs, _ = layer_data(hm, name, **geometry)
        if name in self.viewer.layers:
            self.viewer.layers.remove(name)
        return self.viewer.add_image(data, **kwargs)

    def side_by_side(self) -> None:
        """Input, bicubic and afm-sr of the last run in a 1x3 grid with one shared, linked contrast."""
        if self.last is None or self.last[0] not in self.viewer.layers or self.last[1] not in self.viewer.layers:
            notify_error(InputError("enhance a layer first: side by side shows its input, bicubic and afm-sr"))
            return
        source, result, hm, s = self.last
        if result.metadata["heightmap"].get("afm_sr_leveled"):  # show the input as the model saw it
            source = self._put(hm, f"{source.name} leveled", upscaled_geometry(source, 1))
        bicubic = self.add_upscaled(source, bicubic_upscale(hm, s), s, "bicubic")
        trio = [source, bicubic, result]
        layers = self.viewer.layers
        for i, layer in enumerate(trio):
            layers.move(layers.index(layer), i)
        for layer in layers:
            layer.visible = layer in trio or isinstance(layer, Shapes)
        lo, hi = np.percentile(hm.data, CONTRAST_PERCENTILES)
        layers.unlink_layers(trio)
        for layer in trio:
            layer.contrast_limits = (float(lo), float(hi))
            layer.colormap = source.colormap
        layers.link_layers(trio, ("contrast_limits", "colormap", "gamma"))
        self.viewer.grid.stride = 1
        self.viewer.grid.shape = (1, 3)
        self.viewer.grid.enabled = True
        self.viewer.reset_view()

    def _save_dialog(self) -> None:
        """Ask where to save the selected layer (Qt's dialog asks before replacing a file), then save it."""
        layer = self.viewer.layers.selection.active
        default = _default_save_name(layer)
        path, chosen = QFileDialog.getSaveFileName(self.native, "Save height map", default,
                                                   "Gwyddion (*.gwy);;TIFF (*.tiff);;NumPy (*.npy);;Text (*.txt)")
        if not path:
            return
        if Path(path).suffix:
            self.save(layer, Path(path), overwrite=True)
        else:  # the dialog asked about the name without the suffix; the real file must be new
            self.save(layer, Path(path + chosen[chosen.index("*") + 1:-1]))

    def save(self, layer: Layer | None, path: Path, overwrite: bool = False) -> Path | None:
        """Write ``layer`` through ``afm_sr.io.write`` (atomic; real size and SI units in .gwy).

        ``overwrite`` only after the user was asked; errors become a notification and None.
        """
        try:
            written = write(layer_heightmap(layer), path, overwrite=overwrite)
        except AFMSRError as exc:
            notify_error(exc)
            return None
        show_info(f"afm-sr: saved {written}")
        return written


def _default_save_name(layer: Layer | None) -> str:
    """``<input file stem>_x<s>.gwy`` beside the input file for a result layer, else ``<layer name>.gwy``."""
    if layer is None:
        return ""
    meta = layer.metadata
    source, s = meta.get("file"), meta.get("heightmap", {}).get("afm_sr_scale")
    if source and s:
        return str(Path(source).with_name(f"{Path(source).stem}_x{s}.gwy"))
    return f"{layer.name}.gwy"


class CheckGainWidget(RunDock):
    """What afm-sr gains over bicubic on a high-resolution layer: the paper's protocol, PSNR/SSIM table."""

    run_text = "Check gain"

    def __init__(self, napari_viewer: Viewer) -> None:
        super().__init__(napari_viewer)
        self.table = Table(value=_gain_table(None))
        self.table.read_only = True
        self.caption = Label(value="")
        self.extend([self.table, self.caption])
        self.result: GainResult | None = None

    def job(self, hm: HeightMap, layer: Image, opts: dict[str, Any]
            ) -> tuple[Callable[..., Any], Callable[[Any], None]]:
        """Run ``check_gain`` on ``hm`` in the worker; fill the table when done."""

        def work(progress: Callable[[int, int], None]) -> GainResult:
            return check_gain(hm, progress=progress, **opts)

        def done(res: GainResult) -> None:
            self.result = res
            self.table.value = _gain_table(res)
            self.caption.value = (f"{layer.name}, x{res.scale}: HR {res.shape[1]}x{res.shape[0]} px, "
                                  f"bicubic-downscaled and restored; {res.convention} PSNR/SSIM, "
                                  f"border {res.scale} px")
            self.status.value = f"gain {res.psnr_gain:+.2f} dB"

        return work, done


def _gain_table(res: GainResult | None) -> dict[str, Any]:
    """Rows bicubic / afm-sr / gain, columns PSNR (dB) and SSIM, as ``afm-sr check-gain`` prints them."""
    rows = ([[f"{res.bicubic_psnr:.2f}", f"{res.bicubic_ssim:.4f}"], [f"{res.model_psnr:.2f}", f"{res.model_ssim:.4f}"],
             [f"{res.psnr_gain:+.2f}", f"{res.ssim_gain:+.4f}"]] if res else [["", ""]] * 3)
    return {"data": rows, "index": ["bicubic", "afm-sr", "gain"], "columns": ["PSNR (dB)", "SSIM"]}


def _short_labels(names: list[str]) -> list[str]:
    """Layer names without the part they share (``scan``, ``scan afm-sr x4`` -> ``input``, ``afm-sr x4``)."""
    if len(names) < 2:
        return names
    words = [name.split(" ") for name in names]
    shared = next((i for i, column in enumerate(zip(*words, strict=False)) if len(set(column)) > 1),
                  min(map(len, words)))
    return [" ".join(w[shared:]) or "input" for w in words]


def sample_profile(layer: Image, start: np.ndarray, end: np.ndarray, n: int) -> np.ndarray:
    """``n`` heights of ``layer`` along the world-coordinate segment ``start -> end`` (NaN outside it).

    The endpoints go through the layer's own world-to-data transform (its scale and translate), so an
    input and its result sample the same physical points; values between pixel centres are bilinear.
    """
    a, b = (np.asarray(layer.world_to_data(p))[-2:] for p in (start, end))
    coords = a[:, None] + (b - a)[:, None] * np.linspace(0, 1, n)
    inside = np.all((coords >= -0.5) & (coords <= np.asarray(layer.data.shape)[:, None] - 0.5), axis=0)
    values = map_coordinates(np.asarray(layer.data, dtype=float), coords, order=1, mode="nearest")
    return np.where(inside, values, np.nan)


class ProfileWidget(Container):
    """Height profiles in nm of every 2-D image layer along a line drawn on the ``profile`` shapes layer."""

    layer_name = "profile"

    def __init__(self, napari_viewer: Viewer) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        super().__init__()
        self.viewer = napari_viewer
        self.draw_button = PushButton(text="Draw a profile line",
                                      tooltip="adds the 'profile' shapes layer; drag a line across the scan")
        self.append(self.draw_button)
        self.figure = Figure(figsize=(4, 3), layout="constrained")
        self.axes = self.figure.add_subplot()
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(220)
        self.native.layout().addWidget(self.canvas)
        self.draw_button.changed.connect(self.start_line)
        self.viewer.layers.events.inserted.connect(self._on_layers_changed)
        self.viewer.layers.events.removed.connect(self._on_layers_changed)
        self._connected: Shapes | None = None
        self._on_layers_changed()

    def shapes(self) -> Shapes | None:
        """The ``profile`` shapes layer, if there is one."""
        layer = self.viewer.layers[self.layer_name] if self.layer_name in self.viewer.layers else None
        return layer if isinstance(layer, Shapes) else None

    def start_line(self) -> None:
        """Add the ``profile`` layer in the geometry of the selected image (or reuse it) and start drawing."""
        shapes = self.shapes()
        if shapes is None:
            ref = self.viewer.layers.selection.active
            if not isinstance(ref, Image):
                ref = next((la for la in self.viewer.layers if isinstance(la, Image)), None)
            if ref is None:
                notify_error(InputError("open a scan first: the profile line is drawn across an image layer"))
                return
            shapes = self.viewer.add_shapes(ndim=2, name=self.layer_name, scale=ref.scale[-2:],
                                            translate=ref.translate[-2:], units=ref.units[-2:], edge_width=1.5,
                                            edge_color="cyan", face_color="transparent")
        self.viewer.layers.selection.active = shapes
        shapes.mode = "add_line"

    def _on_layers_changed(self, _event: object = None) -> None:
        """Follow the ``profile`` layer's edits, and redraw (a new result or a removed layer changes the plot)."""
        shapes = self.shapes()
        if shapes is not self._connected:
            if self._connected is not None:
                self._connected.events.data.disconnect(self.update)
            if shapes is not None:
                shapes.events.data.connect(self.update)
            self._connected = shapes
        self.update()

    def line(self) -> tuple[np.ndarray, np.ndarray] | None:
        """World coordinates of the first and last vertex of the newest shape, or None without one."""
        shapes = self.shapes()
        if shapes is None or not len(shapes.data):
            return None
        vertices = np.asarray(shapes.data[-1])
        return (np.asarray(shapes.data_to_world(vertices[0])), np.asarray(shapes.data_to_world(vertices[-1])))

    def profiles(self) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        """Distance along the line (world units) and heights per 2-D grey image layer, or None without a line."""
        line = self.line()
        images = [la for la in self.viewer.layers if isinstance(la, Image) and not la.rgb and la.data.ndim == 2]
        if line is None or not images:
            return None
        start, end = line
        length = float(np.hypot(*(end - start)[-2:]))
        finest = min(float(np.min(la.scale[-2:])) for la in images)
        n = int(min(MAX_PROFILE_POINTS, max(2, np.ceil(length / finest) + 1)))
        return np.linspace(0, length, n), {la.name: sample_profile(la, start, end, n) for la in images}

    def update(self, _event: object = None) -> None:
        """Redraw the plot: one curve per image layer, heights in nm, distance in µm."""
        self.axes.clear()
        found = self.profiles()
        if found is None:
            self.axes.text(0.5, 0.5, "draw a line on the 'profile' layer", ha="center", va="center",
                           transform=self.axes.transAxes)
        else:
            distance, heights = found
            meters = all(str(u) == "meter" for u in self.shapes().units[-2:])  # type: ignore[union-attr]
            x, x_label = (distance * UM, "distance (µm)") if meters else (distance, "distance (world units)")
            for (name, h), label in zip(heights.items(), _short_labels(list(heights)), strict=True):
                in_meters = self.viewer.layers[name].metadata.get("units", "m") == "m"
                self.axes.plot(x, h * NM if in_meters else h, label=label, lw=1)
            self.axes.set_xlabel(x_label)
            self.axes.set_ylabel("height (nm)")
            self.axes.legend(fontsize="small")
        self.canvas.draw_idle()

