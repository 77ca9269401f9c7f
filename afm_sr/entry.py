"""What train.py and eval.py do, given a composed config: instantiate, fit/test, report.

The only module that knows about Hydra/OmegaConf; everything it builds is a plain class named by
``_target_`` in conf/.
"""

from __future__ import annotations

import logging
import netrc
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from afm_sr.errors import AFMSRError, ConfigError
from afm_sr.report import write_table1

log = logging.getLogger("afm_sr")


def wandb_offline() -> bool:
    """W&B runs offline unless WANDB_MODE=online or the user is logged in (API key in env or ~/.netrc)."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in ("offline", "disabled", "dryrun"):
        return True
    if mode == "online" or os.environ.get("WANDB_API_KEY"):
        return False
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is None
    except (FileNotFoundError, netrc.NetrcParseError):
        return True


OmegaConf.register_new_resolver("afm_sr.wandb_offline", wandb_offline, replace=True)


def trainer_kwargs(cfg: DictConfig) -> dict[str, Any]:
    """Trainer config as kwargs, with the legacy ``gpus`` key mapped onto accelerator/devices."""
    kwargs = OmegaConf.to_container(cfg, resolve=True)
    kwargs.pop("_target_", None)
    gpus = kwargs.pop("gpus", None)
    if gpus is not None:
        n = len(gpus) if isinstance(gpus, list) else int(gpus)
        if n > 0:
            available = torch.cuda.device_count()
            if available < n:
                raise ConfigError(f"trainer.gpus={gpus} but {available} CUDA GPU(s) are visible; "
                                  "use trainer.gpus=0 or trainer=cpu to train on the CPU")
            kwargs["accelerator"], kwargs["devices"] = "gpu", gpus
        else:
            kwargs["accelerator"], kwargs["devices"] = "cpu", 1
    return kwargs


def _instantiate_all(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a logger/callback group that names a ``_target_``."""
    if not group:
        return []
    return [instantiate(v) for v in group.values() if isinstance(v, DictConfig) and "_target_" in v]


def build(cfg: DictConfig) -> tuple[pl.LightningDataModule, pl.LightningModule, pl.Trainer]:
    """Datamodule, module and trainer (with loggers and callbacks) from a composed config."""
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.dataset, _convert_="all")
    module = instantiate(cfg.module, _convert_="all")
    loggers = _instantiate_all(cfg.get("logger"))
    callbacks = _instantiate_all(cfg.get("callbacks"))
    trainer = pl.Trainer(**trainer_kwargs(cfg.trainer), logger=loggers or False, callbacks=callbacks)
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return datamodule, module, trainer


def caption(cfg: DictConfig) -> str:
    """The metric definition every table states."""
    return (f"PSNR (dB) / SSIM mean (std) over test images; convention {cfg.module.metric_convention} "
            "(HR clipped range mapped to [0, 1], data_range 1, prediction clamped to [0, 1]); border of "
            "`scale` px cropped; SSIM 11x11 Gaussian window, sigma 1.5")


def report_test(module: Any, out_dir: Path, cfg: DictConfig) -> str:
    """Write Table 1 (md/csv) from the module's test records into ``out_dir`` and return the markdown."""
    paths = write_table1(module.test_records, out_dir, caption(cfg))
    text = paths["table1.md"].read_text(encoding="utf-8")
    log.info("Table 1 written to %s\n%s", out_dir, text)
    return text


def output_dir(cfg: DictConfig) -> Path:
    """The run folder (Hydra's output dir)."""
    return Path(cfg.paths.output_dir)


def train(cfg: DictConfig) -> float | None:
    """Fit, then test the best checkpoint and write Table 1; return the monitored metric for sweepers."""
    datamodule, module, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metric = trainer.callback_metrics.get(cfg.get("optimized_metric", ""))
    if cfg.get("test", True):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        trainer.test(module, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        report_test(module, output_dir(cfg), cfg)
    return None if metric is None else float(metric)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test ``cfg.ckpt_path`` (and bicubic) on the configured test set; write Table 1."""
    if not cfg.get("ckpt_path"):
        raise ConfigError("eval.py needs ckpt_path=/path/to/checkpoint.ckpt (a train.py checkpoint)")
    ckpt = Path(cfg.ckpt_path)
    if not ckpt.is_file():
        raise ConfigError(f"ckpt_path={ckpt}: no such file")
    datamodule, module, trainer = build(cfg)
    try:
        trainer.test(module, datamodule=datamodule, ckpt_path=str(ckpt), weights_only=True)
    except (RuntimeError, KeyError, EOFError, ValueError) as err:
        raise ConfigError(f"ckpt_path={ckpt}: cannot load it into this model ({str(err).splitlines()[0]}); "
                          "pass the same model.* settings it was trained with") from err
    report_test(module, output_dir(cfg), cfg)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def run(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run ``task`` turning afm-sr's own errors into one clear line and exit code 2 (no traceback)."""
    if cfg.get("print_config"):
        log.info("config:\n%s", OmegaConf.to_yaml(cfg))
    with open_dict(cfg):
        cfg.paths.output_dir = str(cfg.paths.output_dir)
    try:
        return task(cfg)
    except (AFMSRError, FloatingPointError, InstantiationException) as err:
        log.error("%s", err)
        print(f"afm-sr: error: {err}", file=sys.stderr)
        sys.exit(2)
