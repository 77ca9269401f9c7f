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

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning_fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.loggers import WandbLogger

from afm_sr.callbacks import AtomicCheckpointIO
from afm_sr.data.prepare import Prepared
from afm_sr.errors import AFMSRError, ConfigError, Interrupted, stop_on_signals
from afm_sr.models.checkpoint import build_network, read_checkpoint
from afm_sr.report import paired_comparison, summarize, write_table1
from afm_sr.report.figures import Example, example_figures, gain_bars, save_png

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
    trainer = pl.Trainer(**trainer_kwargs(cfg.trainer), logger=loggers or False, callbacks=callbacks,
                         plugins=[AtomicCheckpointIO()])
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


def train(cfg: DictConfig) -> float | None:
    """Fit, then test the best checkpoint and write Table 1; return the monitored metric for sweepers."""
    ckpt = cfg.get("ckpt_path")
    if ckpt:
        cfg = use_checkpoint_architecture(cfg, "ckpt_path", Path(str(ckpt)))
    datamodule, module, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt, weights_only=True)
    metric = trainer.callback_metrics.get(cfg.get("optimized_metric", ""))
    if cfg.get("test", True) and trainer.world_size > 1:
        log.warning("test skipped: per-image records are not gathered across %d processes; run eval.py on "
                    "the best checkpoint (one process)", trainer.world_size)
    elif cfg.get("test", True):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        trainer.test(module, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        report_test(module, output_dir(cfg), cfg)
    return None if metric is None else float(metric)


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


def pick_figure_images(images: list[Prepared], n: int) -> list[Prepared]:
    """``n`` test images for figures, taken in turn from each material (first of each, then second, ...)."""
    count: dict[str, int] = {}
    order = []
    for i, im in enumerate(images):
        order.append((count.get(im.material, 0), i))
        count[im.material] = count.get(im.material, 0) + 1
    return [images[i] for _, i in sorted(order)[:n]]


@torch.no_grad()
def _predict(module: Any, images: list[Prepared]) -> list[dict[int, np.ndarray]]:
    """The loaded model's output (network units) for each image and scale, for the figures."""
    module.eval()
    return [{s: module(low[None, None].to(module.device), s).float().cpu()[0, 0].numpy() for s, low in im.lows.items()}
            for im in images]


def _example(image: Prepared, preds: dict[str, dict[int, np.ndarray]]) -> Example:
    """One test image with every model's outputs, back in nm (the HR map's own normalization undone)."""
    stats, pixel = image.stats, image.pixel_size[0]

    def nm(z: torch.Tensor | np.ndarray) -> np.ndarray:
        return stats.invert(np.asarray(z)) * 1e9

    return Example(f"{image.material}: {image.name}", nm(image.hr), {s: nm(v) for s, v in image.lows.items()},
                   {s: nm(v) for s, v in image.inputs.items()},
                   {m: {s: nm(v) for s, v in p.items()} for m, p in preds.items()}, image.hr.shape[1] * pixel)


def write_figures(records: list[dict[str, Any]], examples: list[Example], out_dir: Path) -> dict[str, Path]:
    """Gain bar chart over all test images and the paper's figures per example image, as PNG; return the paths."""
    paths = {"gain_bars": save_png(gain_bars(paired_comparison(records), "gain over bicubic, all test images"),
                                   out_dir / "gain_bars.png")}
    for i, ex in enumerate(examples):
        for kind, fig in example_figures(ex).items():
            paths[f"{kind}_{i}"] = save_png(fig, out_dir / f"{kind}_{i}.png")
    return paths


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test every checkpoint (and bicubic once) on one test set; write Table 1, paired tests and figures.

    Each model's rows carry its name as ``method`` (``model`` for ``ckpt_path``); figures show
    ``figure_images`` test images, in turn from each material; with a W&B logger, tables and PNGs also go
    to the W&B run.
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
        outputs[name] = _predict(module, images)
    module.test_records = records
    out = output_dir(cfg)
    report_test(module, out, cfg)
    examples = [_example(im, {m: o[i] for m, o in outputs.items()}) for i, im in enumerate(images)]
    figures = write_figures(records, examples, out / "figures")
    for lg in trainer.loggers:
        if isinstance(lg, WandbLogger):
            from afm_sr.report.wandb import log_report  # imports wandb (~0.5 s): only when a W&B run exists

            log_report(lg.experiment, {"table1": summarize(records), "table1_per_material": summarize(records, True),
                                       "wilcoxon": paired_comparison(records)}, figures)
    return {f"test/{'' if r['method'] == 'model' else r['method'] + '_'}{m}_x{r['scale']}": r[f"{m}_mean"]
            for r in summarize(records) for m in ("psnr", "ssim")}


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
