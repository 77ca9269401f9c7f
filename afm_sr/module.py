"""The LightningModule: any ``afm_sr.models`` network, per-scale loss balance, adjustable clipping, LR steps."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from afm_sr.data import ImageBatch, PatchBatch
from afm_sr.errors import ConfigError
from afm_sr.metrics import MetricSpec, ScaleMetrics
from afm_sr.models import SRNet
from afm_sr.models.checkpoint import ArchRecord, arch_record, build_network, class_name, read_weights
from afm_sr.report.tables import summarize

LOSS_WEIGHTINGS = ("none", "bicubic")


def load_initial_weights(net: SRNet, path: str, scales: Sequence[int]) -> None:
    """Copy the tensors of the weights file ``path`` into ``net``; ConfigError where its architecture differs."""
    weights = read_weights(path)
    mine = ArchRecord.of(net, list(scales))
    if (weights.record.target, weights.record.kwargs) != (mine.target, mine.kwargs):
        raise ConfigError(f"module.init_weights {path} holds {weights.record.describe()}, but the model to train is "
                          f"{mine.describe()}: choose the matching model= options")
    net.load_state_dict(build_network(weights).state_dict())


class SRModule(pl.LightningModule):
    """Train one network for all ``scales``; validate/test PSNR and SSIM per scale beside bicubic.

    Parameters
    ----------
    net : the architecture (``afm_sr.models.VDSR``, ``MultiScaleResNet``, ...): ``net(lr, scale)`` -> restored.
    optimizer, scheduler : partials that take parameters / the optimizer (built from conf/).
    scheduler_interval : ``"epoch"`` or ``"step"``: what ``scheduler.step_size`` counts.
    clip_theta : the paper's adjustable clipping: gradients clipped to [-theta/lr, theta/lr]; None = off.
    loss_weighting : ``"none"`` (plain MSE) or ``"bicubic"`` (each sample's MSE divided by its bicubic
        MSE, so x8 residuals do not drown x2; see DESIGN.md 'What real scans teach').
    channels_last, compile : run the network in channels-last memory format / under ``torch.compile``
        (speed only; experiments/bench/RESULTS.md says when each pays).
    init_weights : a checkpoint or exported ``.safetensors`` of the same architecture to start from (fine-tuning,
        e.g. the shipped model on a new degradation); None = the network's own initialization.
    finite_check_every : check that the training loss is finite every this many steps (and before each
        validation and at the end of training); between checks a non-finite loss is remembered on the device, so a
        GPU step does not wait for the host (1: every step).
    """

    def __init__(self, net: SRNet, optimizer: Callable[..., torch.optim.Optimizer],
                 scheduler: Callable[..., Any] | None = None, scheduler_interval: str = "epoch",
                 clip_theta: float | None = 0.01, loss_weighting: str = "bicubic", loss_eps: float = 1e-3,
                 scales: Sequence[int] = (2, 4, 8), metric_convention: str = "range01",
                 channels_last: bool = False, compile: bool = False, init_weights: str | None = None,
                 finite_check_every: int = 1) -> None:
        super().__init__()
        if loss_weighting not in LOSS_WEIGHTINGS:
            raise ConfigError(f"module.loss_weighting must be one of {LOSS_WEIGHTINGS}, got {loss_weighting!r}")
        if scheduler_interval not in ("epoch", "step"):
            raise ConfigError(f"module.scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        if clip_theta is not None and clip_theta <= 0:
            raise ConfigError(f"module.clip_theta must be positive or null, got {clip_theta}")
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"], logger=False)
        if init_weights:
            load_initial_weights(net, init_weights, scales)
        self.net = net.to(memory_format=torch.channels_last) if channels_last else net
        if compile:  # in place: parameter names (and so checkpoints) stay those of the eager net
            self.net.compile()
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.scales = [int(s) for s in scales]
        self.spec = MetricSpec(metric_convention)
        self.val_metrics = nn.ModuleDict({str(s): ScaleMetrics(s, self.spec) for s in self.scales})
        self.test_metrics = nn.ModuleDict({str(s): ScaleMetrics(s, self.spec) for s in self.scales})
        self.test_records: list[dict[str, Any]] = []
        self._nonfinite: torch.Tensor | None = None

    def forward(self, lr: torch.Tensor, scale: int, upsampled: torch.Tensor | None = None) -> torch.Tensor:
        """Low-resolution input (N, 1, h, w) at ``scale`` -> restored image (N, 1, scale*h, scale*w).

        ``upsampled``: the bicubic upscaling of ``lr`` cut from the whole image's (the batch's ``input``), so a
        crop's border does not change what the network sees (``afm_sr.models.base``).
        """
        if self.hparams.channels_last:
            lr = lr.contiguous(memory_format=torch.channels_last)
            upsampled = None if upsampled is None else upsampled.contiguous(memory_format=torch.channels_last)
        return self.net(lr, scale, upsampled)

    def loss(self, pred: torch.Tensor, target: torch.Tensor, bicubic: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of each sample's MSE, optionally divided by its bicubic MSE."""
        mse = (pred.float() - target).pow(2).mean(dim=(1, 2, 3))
        if self.hparams.loss_weighting == "bicubic":
            mse = mse / ((bicubic - target).pow(2).mean(dim=(1, 2, 3)) + self.hparams.loss_eps)
        return mse.mean()

    def training_step(self, batch: PatchBatch, batch_idx: int) -> torch.Tensor:
        """One batch of patches at one scale (the scales cycle from batch to batch)."""
        pred = self(batch["low"], int(batch["scale"]), batch["input"])
        loss = self.loss(pred, batch["target"], batch["input"])
        bad = ~torch.isfinite(loss.detach())
        self._nonfinite = bad if self._nonfinite is None else self._nonfinite | bad
        if (batch_idx + 1) % max(1, self.hparams.finite_check_every) == 0:
            self._check_finite()
        self.log("train/loss", loss, prog_bar=True, batch_size=len(pred))
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=len(pred))
        return loss

    def _check_finite(self) -> None:
        """FloatingPointError if a training loss since the last check was NaN/Inf (one host sync)."""
        if self._nonfinite is not None and bool(self._nonfinite):
            raise FloatingPointError(f"training loss became NaN/Inf by step {self.global_step}; lower the learning "
                                     "rate or check the data (no checkpoint was written)")
        self._nonfinite = None

    def on_validation_start(self) -> None:
        """No validation (and so no checkpoint) of weights a non-finite loss has touched."""
        self._check_finite()

    def on_train_end(self) -> None:
        """The last steps' check."""
        self._check_finite()

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        """Adjustable gradient clipping (VDSR): clip each gradient to +-theta/lr with the current lr."""
        if self.hparams.clip_theta is None:
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
            return
        lr = optimizer.param_groups[0]["lr"]
        torch.nn.utils.clip_grad_value_(self.net.parameters(), self.hparams.clip_theta / lr)

    def configure_optimizers(self) -> dict[str, Any]:
        """Optimizer and step-decay scheduler from conf/ (SGD 0.1 / momentum 0.9 / wd 1e-4 by default)."""
        opt = self.optimizer_factory(params=self.net.parameters())
        if self.scheduler_factory is None:
            return {"optimizer": opt}
        sched = self.scheduler_factory(optimizer=opt)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": self.hparams.scheduler_interval}}

    def _evaluate(self, batch: ImageBatch, metrics: nn.ModuleDict) -> dict[str, torch.Tensor]:
        """Measure one batch of whole images (same scale) into that scale's ``ScaleMetrics``; return the output."""
        scale = int(batch["scale"][0])
        pred = self(batch["low"], scale, batch["input"]).float()
        metrics[str(scale)].update(pred, batch["input"], batch["target"], batch["index"], batch["z_range"])
        return {"scale": torch.tensor(scale), "pred": pred}

    def _rows(self, metrics: nn.ModuleDict) -> dict[int, dict[str, torch.Tensor]]:
        """Each measured scale's rows from every process (``ScaleMetrics.compute``), then reset for the next epoch."""
        rows = {s: {k: v.reshape(-1) for k, v in metrics[str(s)].compute().items()}  # compute() squeezes 1 row to 0-d
                for s in self.scales if metrics[str(s)].update_count}
        for m in metrics.values():
            m.reset()
        return rows

    def validation_step(self, batch: ImageBatch, batch_idx: int) -> dict[str, torch.Tensor]:
        """Measure model and bicubic on one validation image."""
        return self._evaluate(batch, self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        """Log val/psnr_xS, val/bicubic_psnr_xS, val/gain_psnr_xS and the worst scale's gain (means over images).

        A NaN metric (a broken image, a diverged network) raises FloatingPointError naming the images, before
        any checkpoint could be chosen on it (+Inf dB, a perfect match, is a number).
        """
        gains = []
        for s, rows in self._rows(self.val_metrics).items():
            self._check_finite_metrics(rows, s)
            means = {m: rows[m].mean() for m in ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim")}
            for m, v in means.items():
                self.log(f"val/{m}_x{s}", v, sync_dist=True)
            gain = means["psnr"] - means["bicubic_psnr"]
            self.log(f"val/gain_psnr_x{s}", gain, sync_dist=True)
            gains.append(gain)
        if gains:
            self.log("val/min_gain_psnr", torch.stack(gains).min(), prog_bar=True, sync_dist=True)

    def _check_finite_metrics(self, rows: dict[str, torch.Tensor], scale: int) -> None:
        """FloatingPointError naming the validation images whose metrics at ``scale`` are NaN."""
        bad = sorted({int(i) for m, v in rows.items() if m != "image" for i in rows["image"][torch.isnan(v)]})
        if not bad:
            return
        loader = self.trainer.val_dataloaders
        images = (loader[0] if isinstance(loader, list) else loader).dataset.images
        names = ", ".join(images[i].name for i in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise FloatingPointError(f"validation metrics at x{scale} are NaN for {len(bad)} image(s) ({names}) "
                                 f"at epoch {self.current_epoch}: the image data or the network is broken; no "
                                 "checkpoint was chosen on them")

    def test_step(self, batch: ImageBatch, batch_idx: int) -> dict[str, torch.Tensor]:
        """Measure model and bicubic on one test image (its row of Table 1)."""
        return self._evaluate(batch, self.test_metrics)

    def on_test_epoch_end(self) -> None:
        """Gather every process's rows into ``test_records`` (Table 1's rows); log test/{method}_psnr_xS means."""
        loader = self.trainer.test_dataloaders
        images = (loader[0] if isinstance(loader, list) else loader).dataset.images
        rows = self._rows(self.test_metrics)
        self.test_records = []
        for index, s in sorted((int(i), s) for s, r in rows.items() for i in r["image"]):
            row = rows[s]
            k = int((row["image"] == index).nonzero()[0, 0])
            base = {"material": images[index].material, "image": images[index].name, "scale": s}
            self.test_records += [{**base, "method": "bicubic", "psnr": float(row["bicubic_psnr"][k]),
                                   "ssim": float(row["bicubic_ssim"][k])},
                                  {**base, "method": "model", "psnr": float(row["psnr"][k]),
                                   "ssim": float(row["ssim"][k])}]
        for row in summarize(self.test_records):
            prefix = "test/" if row["method"] == "model" else "test/bicubic_"
            self.log(f"{prefix}psnr_x{row['scale']}", row["psnr_mean"])
            self.log(f"{prefix}ssim_x{row['scale']}", row["ssim_mean"])

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the RNG the patch sampler draws from, so a resumed run sees the patches it would have."""
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the architecture record and the RNG state next to the weights (``infer`` rebuilds the net)."""
        checkpoint["torch_rng_state"] = torch.get_rng_state()  # patches are drawn from it: resume exactly
        checkpoint["afm_sr"] = arch_record(self.net, self.scales)
        checkpoint["afm_sr_training"] = {  # what a resume must match (entry.check_resume)
            "optimizers": [class_name(o) for o in self.trainer.optimizers],
            "schedulers": [class_name(c.scheduler) for c in self.trainer.lr_scheduler_configs]}
