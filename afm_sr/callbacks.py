"""Lightning plumbing: atomic checkpoints keeping the run's degradation, LR | bicubic | VDSR | HR panels, log lines."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from matplotlib.figure import Figure
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.trainer.states import TrainerFn

from afm_sr.atomic import write_atomically
from afm_sr.data import ImageBatch
from afm_sr.models.checkpoint import DEGRADATION_KEY
from afm_sr.report.figures import comparison_panel, save_png


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temp file beside it, then rename: a run killed mid-save keeps the old file."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike,
                        storage_options: Any | None = None) -> None:
        """Save through ``afm_sr.atomic.write_atomically``: a temp file in the target folder, renamed onto ``path``."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically({target: lambda tmp: super(AtomicCheckpointIO, self).save_checkpoint(
            checkpoint, tmp, storage_options)}, overwrite=True)


def _figure_to_array(fig: Figure) -> np.ndarray:
    """RGB uint8 array of a rendered figure (for W&B / TensorBoard)."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


class ImagePanel(pl.Callback):
    """Keep the first image of each scale seen in validation/test and show it as a comparison panel.

    Validation panels go to every logger that takes images (W&B, TensorBoard); test panels are also
    written as PNG into ``out_dir`` (default: the trainer's log folder), so every run leaves a picture.
    """

    def __init__(self, every_n_epochs: int = 1, out_dir: str | None = None) -> None:
        self.every_n_epochs, self.out_dir = every_n_epochs, out_dir
        self.examples: dict[int, dict[str, np.ndarray]] = {}
        self.widths: dict[int, float] = {}

    def _capture(self, outputs: Any, batch: ImageBatch) -> None:
        """Remember the first (LR, bicubic, model, HR) quadruple of a scale, in nm, and its scan width (m)."""
        scale = int(batch["scale"][0])
        if scale in self.examples or not isinstance(outputs, dict) or "pred" not in outputs:
            return
        units = batch["units"]
        stats = units.normalization(0)
        images = {f"LR (1/{scale})": batch["low"], "bicubic": batch["input"], "afm-sr": outputs["pred"],
                  "HR": batch["target"]}
        self.examples[scale] = {k: stats.invert(v[0, 0].float().cpu().numpy()) * 1e9 for k, v in images.items()}
        self.widths[scale] = float(units.scan_size[0, 0])

    def _figures(self, title: str) -> dict[int, Figure]:
        """One panel per captured scale, with a cross-section through the middle row."""
        return {s: comparison_panel(ex, scan_size_m=self.widths[s], unit="nm", title=f"{title} x{s}",
                                    row=ex["HR"].shape[0] // 2)
                for s, ex in sorted(self.examples.items())}

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start a fresh capture."""
        self.examples, self.widths = {}, {}

    on_test_epoch_start = on_validation_epoch_start

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                                batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Capture the first image of each scale."""
        if trainer.current_epoch % self.every_n_epochs == 0:
            self._capture(outputs, batch)

    def on_test_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                          batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Capture the first test image of each scale (test_step returns its prediction)."""
        self._capture(outputs, batch)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Send the panels to image-capable loggers."""
        if trainer.sanity_checking or not self.examples:
            return
        self._log(trainer, self._figures(f"val epoch {trainer.current_epoch}"), "val")

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Write test panels as PNG and send them to the loggers."""
        if not self.examples:
            return
        figs = self._figures("test")
        out = Path(self.out_dir or trainer.default_root_dir) / "samples"
        arrays = {s: _figure_to_array(f) for s, f in figs.items()}
        for s, fig in figs.items():
            save_png(fig, out / f"test_panel_x{s}.png")
        self._log(trainer, arrays, "test")

    @staticmethod
    def _log(trainer: pl.Trainer, panels: dict[int, Figure | np.ndarray], stage: str) -> None:
        """Log each panel with whichever image API a logger has."""
        arrays = {s: p if isinstance(p, np.ndarray) else _figure_to_array(p) for s, p in panels.items()}
        for lg in trainer.loggers:
            for s, arr in arrays.items():
                if hasattr(lg, "log_image"):
                    lg.log_image(key=f"{stage}/panel_x{s}", images=[arr], step=trainer.global_step)
                elif hasattr(getattr(lg, "experiment", None), "add_image"):
                    lg.experiment.add_image(f"{stage}/panel_x{s}", arr, trainer.global_step, dataformats="HWC")
        for p in panels.values():
            if isinstance(p, Figure):
                import matplotlib.pyplot as plt

                plt.close(p)


class RecordDegradation(pl.Callback):
    """Keep the run's ``degradation`` config node in every checkpoint, so export records what the net trained on."""

    def __init__(self, node: dict[str, Any]) -> None:
        self.node = node

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        """Add the node under ``DEGRADATION_KEY`` (read back by ``afm_sr.models.checkpoint.read_checkpoint``)."""
        checkpoint[DEGRADATION_KEY] = self.node


class LineProgress(ProgressBar):
    """Progress for a log file: one line after each validation and at each epoch's end, never one per step.

    An animated bar writes an update per step into a file that is not a terminal (tqdm) or nothing until the end
    (rich); ``afm_sr.entry`` uses this bar instead where stdout is not a TTY.
    """

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True
        self._start = time.monotonic()
        self._last_step = -1

    def disable(self) -> None:
        """Stop writing (Lightning calls this on every process but rank 0)."""
        self._enabled = False

    def enable(self) -> None:
        """Write again."""
        self._enabled = True

    def _line(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Print epoch, step, time so far and the bar's metrics (train loss, the worst scale's gain), once a step."""
        if not self._enabled or trainer.global_step == self._last_step:
            return
        self._last_step = trainer.global_step
        epochs = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        metrics = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in self.get_metrics(trainer, pl_module).items())
        elapsed = timedelta(seconds=round(time.monotonic() - self._start))
        self.print(f"epoch {trainer.current_epoch + 1}{epochs} step {trainer.global_step} ({elapsed}): {metrics}",
                   flush=True)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the clock."""
        self._start, self._last_step = time.monotonic(), -1

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """A line with the new validation metrics (not for the sanity check or a validate-only run)."""
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            self._line(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """A line for an epoch whose end had no validation."""
        self._line(trainer, pl_module)
