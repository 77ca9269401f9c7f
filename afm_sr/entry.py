"""What train.py and eval.py do, given a composed config: instantiate, fit/test, hand the results to report/.

Hydra glue only, and the only module that knows about Hydra/OmegaConf: everything it builds is a plain
class named by ``_target_`` in conf/; the evaluation report itself is ``afm_sr.report.evaluation``.
"""

from __future__ import annotations

import logging
import netrc
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning_fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.loggers import WandbLogger

from afm_sr.callbacks import AtomicCheckpointIO, LineProgress
from afm_sr.errors import AFMSRError, ConfigError, Interrupted, stop_on_signals
from afm_sr.models.checkpoint import build_network, read_checkpoint
from afm_sr.report.evaluation import (
    example,
    metric_dict,
    pick_figure_images,
    predict,
    report_tables,
    write_figures,
    write_table,
)

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
    """Datamodule, module and trainer (with loggers and callbacks) from a composed config.

    Where stdout is not a terminal (a log file) and the progress bar is on, ``LineProgress`` replaces the bar.
    """
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.dataset, _convert_="all")
    module = instantiate(cfg.module, _convert_="all")
    loggers = _instantiate_all(cfg.get("logger"))
    callbacks = _instantiate_all(cfg.get("callbacks"))
    kwargs = trainer_kwargs(cfg.trainer)
    if kwargs.get("enable_progress_bar", True) and not sys.stdout.isatty() and not any(
            isinstance(c, ProgressBar) for c in callbacks):
        callbacks.append(LineProgress())  # a log file gets a line per validation/epoch, not an update per step
    trainer = pl.Trainer(**kwargs, logger=loggers or False, callbacks=callbacks, plugins=[AtomicCheckpointIO()])
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return datamodule, module, trainer


def output_dir(cfg: DictConfig) -> Path:
    """The run folder (Hydra's output dir)."""
    return Path(cfg.paths.output_dir)


def _checkpoint_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a checkpoint file (a folder, or nothing there), with what to give instead; else None."""
    if path.is_dir():
        found = [p for folder in (path, path / "checkpoints") for p in sorted(folder.glob("*.ckpt"))]
        return "is a folder, not a checkpoint file; " + (f"give a file in it, e.g. {found[0]}" if found else
                                                          "give a .ckpt file written by train.py")
    if not path.is_file():
        return ("no such checkpoint file; give a checkpoint written by train.py "
                "(outputs/<run>/checkpoints/last.ckpt or best.ckpt)")
    return None


def use_checkpoint_architecture(cfg: DictConfig, name: str, ckpt: Path) -> DictConfig:
    """A copy of ``cfg`` whose ``model`` is the network ``ckpt`` records (ConfigError naming it if unusable).

    The checkpoint is read with ``weights_only=True`` and its record and tensor shapes are checked before
    Lightning sees it, so a missing, foreign, pickled or mismatched file is one clear line, and a user never
    repeats the ``model.*`` settings a checkpoint was trained with.
    """
    problem = _checkpoint_problem(ckpt)
    if problem:
        raise ConfigError(f"{name}={ckpt}: {problem}")
    try:
        weights = read_checkpoint(ckpt)
        build_network(weights)
    except AFMSRError as err:
        raise ConfigError(f"{name}: {err}") from err
    out = cfg.copy()
    with open_dict(out):
        out.model = OmegaConf.create(weights.record.as_config())
    if OmegaConf.select(cfg, "model") != out.model:
        log.info("%s: using the architecture the checkpoint records, %s", name, weights.record.describe())
    return out


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit, then test the best checkpoint and write Table 1; return (metrics, the objects built).

    The metrics are the trainer's callback metrics after fit (and test) as floats; the objects are the
    ``cfg``, ``datamodule``, ``module`` and ``trainer`` (lightning-hydra-template's ``(metric_dict, object_dict)``).
    """
    ckpt = cfg.get("ckpt_path")
    if ckpt:
        cfg = use_checkpoint_architecture(cfg, "ckpt_path", Path(str(ckpt)))
    datamodule, module, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt, weights_only=True)
    metrics = _floats(trainer.callback_metrics)
    if cfg.get("test", True):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        trainer.test(module, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        if trainer.is_global_zero:  # every process holds the gathered rows; one writes them
            write_table(module.test_records, output_dir(cfg), cfg.module.metric_convention)
        metrics |= _floats(trainer.callback_metrics)
    return metrics, {"cfg": cfg, "datamodule": datamodule, "module": module, "trainer": trainer}


def _floats(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Lightning's callback metrics (tensors) as plain floats."""
    return {k: float(v) for k, v in metrics.items()}


def optimized_metric(metrics: Mapping[str, float], cfg: DictConfig) -> float | None:
    """The value of ``cfg.optimized_metric`` that a sweeper maximizes, None where the run did not log it."""
    return metrics.get(cfg.get("optimized_metric") or "")


def checkpoints(cfg: DictConfig) -> dict[str, Path]:
    """The models eval.py compares, name -> checkpoint: ``checkpoints`` (a mapping) or ``ckpt_path`` (``model``)."""
    given = cfg.get("checkpoints")
    if given is not None and not isinstance(given, DictConfig):
        raise ConfigError(f"checkpoints must map names to files, e.g. 'checkpoints={{mono: a.ckpt}}', got {given!r}")
    named = OmegaConf.to_container(given, resolve=True) if given else {}
    if cfg.get("ckpt_path") and named:
        raise ConfigError("give either ckpt_path=... (one model) or checkpoints={name: path, ...}, not both")
    if cfg.get("ckpt_path"):
        named = {"model": cfg.ckpt_path}
    if not named:
        raise ConfigError("eval.py needs ckpt_path=/path/to/checkpoint.ckpt (a train.py checkpoint) or "
                          "'checkpoints={mono: a.ckpt, multi: b.ckpt}'")
    if "bicubic" in named:
        raise ConfigError("checkpoints: 'bicubic' is the baseline's name; call the model something else")
    key = "ckpt_path" if cfg.get("ckpt_path") else "checkpoints.{}"
    problems = [f"{key.format(name)}={path}: {_checkpoint_problem(Path(str(path)))}" for name, path in named.items()
                if _checkpoint_problem(Path(str(path)))]
    if problems:
        raise ConfigError("; ".join(problems))
    return {str(name): Path(str(path)) for name, path in named.items()}


def _test_checkpoint(trainer: pl.Trainer, cfg: DictConfig, datamodule: pl.LightningDataModule, name: str,
                     ckpt: Path) -> tuple[Any, list[dict[str, Any]]]:
    """Build the network ``ckpt`` records, test it; return the module and its records (model rows named ``name``)."""
    module = instantiate(use_checkpoint_architecture(cfg, f"checkpoint {name}", ckpt).module, _convert_="all")
    trainer.test(module, datamodule=datamodule, ckpt_path=str(ckpt), weights_only=True)
    return module, [{**r, "method": name} if r["method"] == "model" else r for r in module.test_records]


def evaluate(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Test every checkpoint (and bicubic once) on one test set; write Table 1, paired tests and figures.

    Each model's rows carry its name as ``method`` (``model`` for ``ckpt_path``); figures show
    ``figure_images`` test images, in turn from each material; with a W&B logger, tables and PNGs also go
    to the W&B run. Returns ``test/...`` means and the objects built (``records`` among them).
    """
    models = checkpoints(cfg)
    datamodule, module, trainer = build(cfg)
    datamodule.setup("test")  # idempotent: trainer.test finds it done
    images = pick_figure_images(datamodule.images["test"], cfg.figure_images)
    records: list[dict[str, Any]] = []
    outputs: dict[str, list[dict[int, np.ndarray]]] = {}
    for name, ckpt in models.items():
        module, rows = _test_checkpoint(trainer, cfg, datamodule, name, ckpt)
        records += [r for r in rows if r["method"] != "bicubic" or not outputs]
        outputs[name] = predict(module, images)
    out = output_dir(cfg)
    write_table(records, out, cfg.module.metric_convention)
    examples = [example(im, {m: o[i] for m, o in outputs.items()}) for i, im in enumerate(images)]
    figures = write_figures(records, examples, out / "figures")
    for lg in trainer.loggers:
        if isinstance(lg, WandbLogger):
            from afm_sr.report.wandb import log_report  # imports wandb (~0.5 s): only when a W&B run exists

            log_report(lg.experiment, report_tables(records), figures)
    return metric_dict(records), {"cfg": cfg, "datamodule": datamodule, "module": module, "trainer": trainer,
                                  "records": records, "figures": figures}


def _reason(err: BaseException) -> str:
    """One line saying what is wrong: afm-sr's own message, not Hydra's 'Error in call to target' wrapper."""
    cause = err.__cause__ if isinstance(err, InstantiationException) and err.__cause__ is not None else err
    if isinstance(cause, MisconfigurationException):
        return f"trainer: {cause}"
    if isinstance(cause, MemoryError):
        return f"out of memory ({cause or 'no details'}); use smaller images, batches or a smaller model"
    if cause is not err and not isinstance(cause, AFMSRError):  # a bad argument to some _target_
        return f"{' '.join(str(err).splitlines()[:1])} {type(cause).__name__}: {cause}"
    return " ".join(str(cause).split())


def _resume_hint(cfg: DictConfig) -> str:
    """How to go on after an interruption: the run's last checkpoint, if it wrote one."""
    last = next(output_dir(cfg).rglob("last.ckpt"), None)
    return f"resume with ckpt_path={last}" if last else "no checkpoint was written yet"


def run(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run ``task`` turning afm-sr's own errors into one clear line and exit code 2 (no traceback).

    SIGINT/SIGTERM stop it through its cleanup (checkpoints are written atomically, temp files removed) with
    one line and exit code 130/143; ``ckpt_path=<run>/checkpoints/last.ckpt`` resumes it.
    """
    if cfg.get("print_config"):
        log.info("config:\n%s", OmegaConf.to_yaml(cfg))
    with open_dict(cfg):
        cfg.paths.output_dir = str(cfg.paths.output_dir)
    try:
        with stop_on_signals():
            return task(cfg)
    except Interrupted as err:
        print(f"afm-sr: error: {err}; {_resume_hint(cfg)}", file=sys.stderr)
        sys.exit(err.exit_code)
    except (AFMSRError, FloatingPointError, InstantiationException, MisconfigurationException, MemoryError) as err:
        reason = _reason(err)
        log.error("%s", reason)
        print(f"afm-sr: error: {reason}", file=sys.stderr)
        sys.exit(2)
