"""What train.py and eval.py do, given a composed config: instantiate, fit/test, hand the results to report/.

Hydra glue only, and the only module that knows about Hydra/OmegaConf: everything it builds is a plain
class named by ``_target_`` in conf/; the evaluation report itself is ``afm_sr.report.evaluation``.
"""

from __future__ import annotations

import logging
import netrc
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException, InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning_fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.loggers import WandbLogger

from afm_sr.callbacks import AtomicCheckpointIO, LineProgress, RecordDegradation
from afm_sr.errors import AFMSRError, ConfigError, Interrupted, stop_on_signals
from afm_sr.models import SRNet
from afm_sr.models.checkpoint import TrainingState, build_network, class_name, read_checkpoint
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

    Where stdout is not a terminal (a log file) and the progress bar is on, ``LineProgress`` replaces the bar;
    ``RecordDegradation`` keeps the config's ``degradation`` node in every checkpoint.
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
    if cfg.get("degradation") is not None:
        callbacks.append(RecordDegradation(OmegaConf.to_container(cfg.degradation, resolve=True)))
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


def use_checkpoint_architecture(cfg: DictConfig, name: str, ckpt: Path
                                ) -> tuple[DictConfig, SRNet, TrainingState | None]:
    """``cfg`` with the ``model`` that ``ckpt`` records, that network (weights loaded), what resuming it must match.

    ConfigError naming the file if it is unusable. The checkpoint's checksums are verified, it is read with
    ``weights_only=True``, and its record and tensor shapes are checked before Lightning sees it, so a
    missing, corrupted, foreign, pickled or mismatched file is one clear line, and a user never repeats the
    ``model.*`` settings a checkpoint was trained with.
    """
    problem = _checkpoint_problem(ckpt)
    if problem:
        raise ConfigError(f"{name}={ckpt}: {problem}")
    try:
        weights = read_checkpoint(ckpt)
        net = build_network(weights)
    except AFMSRError as err:
        raise ConfigError(f"{name}: {err}") from err
    out = cfg.copy()
    with open_dict(out):
        out.model = OmegaConf.create(weights.record.as_config())
    if OmegaConf.select(cfg, "model") != out.model:
        log.info("%s: using the architecture the checkpoint records, %s", name, weights.record.describe())
    return out, net, weights.training


def check_resume(cfg: DictConfig, ckpt: Path, saved: TrainingState | None) -> None:
    """ConfigError saying what differs where ``ckpt`` cannot resume under ``cfg``, before Lightning loads it.

    A file without Lightning's training state (weights only) cannot resume; the configured optimizer and LR
    scheduler must be the checkpoint's: by the class names afm-sr records, or (files written before it did)
    by the settings the saved state holds, which is what Lightning would otherwise fail on (``KeyError:
    'momentum'`` resuming Adam state with SGD).
    """
    if saved is None or saved.lightning is None:
        raise ConfigError(f"ckpt_path={ckpt}: holds weights but no Lightning training state ('pytorch-lightning_"
                          "version', optimizer and loop state), so training cannot resume from it; evaluate it "
                          "with eval.py, or resume from a last.ckpt written by train.py")
    optimizer = instantiate(cfg.module.optimizer)(params=[torch.nn.Parameter(torch.zeros(1))])
    factory = cfg.module.get("scheduler")
    scheduler = instantiate(factory)(optimizer=optimizer) if factory else None
    wanted = {"optimizer": [optimizer], "scheduler": [scheduler] if scheduler is not None else []}
    for what, recorded, keys in (("optimizer", saved.optimizer_classes, saved.optimizer_keys),
                                 ("scheduler", saved.scheduler_classes, saved.scheduler_keys)):
        now = [class_name(o) for o in wanted[what]]
        if recorded is not None and list(recorded) != now:
            raise ConfigError(f"ckpt_path={ckpt}: it was trained with {what} {_names(recorded)} but "
                              f"{_names(now)} is configured; resume with the {what} it was trained with")
        if recorded is None and len(keys) != len(now):
            raise ConfigError(f"ckpt_path={ckpt}: it holds {len(keys)} {what} state(s) but {len(now)} "
                              f"{what}(s) are configured; resume with the {what} it was trained with")
        for obj, saved_keys in zip(wanted[what], keys if recorded is None else (), strict=False):
            missing = sorted(_settings(obj) - saved_keys)
            if missing:
                raise ConfigError(f"ckpt_path={ckpt}: its saved {what} state has no {', '.join(missing)}, which "
                                  f"the configured {type(obj).__name__} needs: it was trained with another "
                                  f"{what}; resume with the {what} it was trained with")


def _settings(obj: object) -> set[str]:
    """The numeric settings an optimizer's param groups (or a scheduler's state) must hold to be resumed into it.

    Flags that PyTorch versions add and fill in themselves (``foreach``, ``fused``, ...) and private fields
    are left out, so a checkpoint of an older PyTorch still resumes.
    """
    values = obj.defaults if isinstance(obj, torch.optim.Optimizer) else vars(obj)
    return {k for k, v in values.items() if not k.startswith("_") and not isinstance(v, bool)
            and isinstance(v, int | float | tuple | list)}


def _names(classes: Sequence[str]) -> str:
    """``torch.optim.adam.Adam`` as ``Adam``, several as ``[A, B]``, none as ``none``."""
    short = [c.rsplit(".", 1)[-1] for c in classes]
    return "none" if not short else short[0] if len(short) == 1 else f"[{', '.join(short)}]"


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit, then test the best checkpoint and write Table 1; return (metrics, the objects built).

    The metrics are the trainer's callback metrics after fit (and test) as floats; the objects are the
    ``cfg``, ``datamodule``, ``module`` and ``trainer`` (lightning-hydra-template's ``(metric_dict, object_dict)``).
    """
    ckpt = cfg.get("ckpt_path")
    if ckpt:
        cfg, _, saved = use_checkpoint_architecture(cfg, "ckpt_path", Path(str(ckpt)))
        check_resume(cfg, Path(str(ckpt)), saved)
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
    """Build the network ``ckpt`` records, test it; return the module and its records (model rows named ``name``).

    The weights are loaded by afm-sr (``models.checkpoint``), not Lightning: evaluating needs only them, so a
    checkpoint without Lightning's training state evaluates too (and ``module.init_weights`` never replaces them).
    """
    checked, net, _ = use_checkpoint_architecture(cfg, f"checkpoint {name}", ckpt)
    module = instantiate(checked.module, net=net, init_weights=None, _convert_="all")
    trainer.test(module, datamodule=datamodule)
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


class SweepJobFailed(CompactHydraException):
    """An afm-sr error in one job of a Hydra multirun: the job is recorded as failed and the sweep goes on.

    Hydra's launchers catch exceptions per job (``SystemExit`` would end the whole sweep); once the jobs
    have run, the sweeper raises the first failure and Hydra prints this one line and exits with 1.
    """


def sweep_job() -> str | None:
    """``job 3 (optimizer.lr=0.1,seed=2)`` inside a Hydra multirun; None in a single run."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    job = HydraConfig.get().job
    return f"job {job.num} ({job.override_dirname or 'no overrides'})"


def run(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run ``task`` turning afm-sr's own errors into one clear line and exit code 2 (no traceback).

    In a Hydra multirun the line names the job, and the job fails (``SweepJobFailed``) instead of ending
    the process, so the other jobs run and the sweep then exits with 1. SIGINT/SIGTERM stop it (a sweep
    too) through its cleanup (checkpoints are written atomically, temp files removed) with one line and exit
    code 130/143; ``ckpt_path=<run>/checkpoints/last.ckpt`` resumes it.
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
        reason, job = _reason(err), sweep_job()
        log.error("%s", reason)
        if job is None:
            print(f"afm-sr: error: {reason}", file=sys.stderr)
            sys.exit(2)
        print(f"afm-sr: error: {job} failed: {reason}", file=sys.stderr, flush=True)
        raise SweepJobFailed(f"afm-sr: error: sweep {job} failed: {reason}; the other jobs ran, their results "
                             f"are in {Path(cfg.paths.output_dir).parent}") from None
