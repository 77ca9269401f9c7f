"""Every option of every config group composes (and instantiates where that is cheap)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict
from support import compose_config

from afm_sr import entry
from afm_sr.errors import ConfigError
from afm_sr.materials.instrument import Instrument

CONF = Path(__file__).resolve().parents[1] / "conf"


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml") if not p.stem.startswith("_"))


_compose = compose_config


def test_every_group_has_options():
    for group in ("dataset", "material", "instrument", "degradation", "model", "module", "optimizer", "trainer",
                  "logger", "callbacks", "experiment", "hydra", "paths", "debug", "hparams_search"):
        assert _options(group), f"conf/{group}/ is empty"


@pytest.mark.parametrize("config", ["train", "eval"])
@pytest.mark.parametrize("option", _options("dataset"))
def test_dataset_options_instantiate(config, option):
    cfg = _compose([f"dataset={option}"], config)
    if option == "folder":
        assert OmegaConf.is_missing(cfg.dataset.materials.mine, "path")
        return
    dm = instantiate(cfg.dataset, _convert_="all")
    assert dm.materials and dm.scales == [2, 4, 8]


@pytest.mark.parametrize("option", _options("material"))
def test_material_options_compose(option):
    cfg = _compose(["dataset=mono", f"material@dataset.materials.ceramic={option}"])
    node = cfg.dataset.materials.ceramic
    assert "_target_" in node
    if not OmegaConf.missing_keys(node):
        material = instantiate(node)
        assert material.name


def _synthetic(cfg) -> dict:
    """The composed synthetic materials (those with a generator) of ``cfg.dataset``, by name."""
    return {name: node for name, node in cfg.dataset.materials.items() if "generator" in node}


@pytest.mark.parametrize("config", ["train", "eval"])
@pytest.mark.parametrize("option", _options("dataset"))
def test_every_synthetic_material_of_every_dataset_composes_the_instrument(config, option):
    """conf/instrument/default.yaml lands under each synthetic material's ``artefacts``, value for value."""
    expected = OmegaConf.to_container(OmegaConf.load(CONF / "instrument" / "default.yaml"))
    materials = _synthetic(_compose([f"dataset={option}"], config))
    assert bool(materials) == (option in ("mono", "multi", "multi_real", "multi_real_extra")), sorted(materials)
    for name, node in materials.items():
        assert OmegaConf.to_container(node.artefacts) == expected, name
        instrument = instantiate(node.artefacts, _convert_="all")
        assert isinstance(instrument, Instrument) and instrument.tip_radius_m == expected["tip_radius_m"], name


@pytest.mark.parametrize("option", _options("material"))
def test_each_material_option_has_the_instrument_if_and_only_if_synthetic(option):
    node = _compose(["dataset=mono", f"material@dataset.materials.ceramic={option}"]).dataset.materials.ceramic
    assert ("artefacts" in node) == ("generator" in node) == (option not in ("folder", "afm_train", "afm_extra"))


def test_an_instrument_value_is_overridden_per_material():
    cfg = _compose(["dataset=multi", "dataset.materials.bone.artefacts.tilt=0.1"])
    assert cfg.dataset.materials.bone.artefacts.tilt == 0.1 and cfg.dataset.materials.nacre.artefacts.tilt is None


@pytest.mark.parametrize("option", _options("degradation"))
def test_degradation_options(option):
    deg = instantiate(_compose([f"degradation={option}"]).degradation)
    hr = torch.randn(32, 32)
    assert deg.downscale(hr, 4, torch.Generator().manual_seed(0)).shape == (8, 8)


@pytest.mark.parametrize("group", ["model", "optimizer", "module"])
def test_model_module_options(group):
    for option in _options(group):
        small = SMALL[option] if group == "model" else SMALL["vdsr"]
        cfg = _compose([f"{group}={option}", *small])
        module = instantiate(cfg.module, _convert_="all")
        assert module.configure_optimizers()["optimizer"].param_groups[0]["lr"] == cfg.optimizer.lr
        assert module(torch.randn(1, 1, 6, 6), 4).shape == (1, 1, 24, 24)


#: A small instance of each model option (a test fails here when a model option is added without one).
SMALL = {"vdsr": ["model.depth=3", "model.width=4"], "msr": ["model.blocks=1", "model.width=4", "model.tail_width=4"]}


@pytest.mark.parametrize("option", _options("trainer"))
def test_trainer_options(option):
    cfg = _compose([f"trainer={option}"])
    kwargs = entry.trainer_kwargs(cfg.trainer)
    assert "gpus" not in kwargs and "_target_" not in kwargs


@pytest.mark.parametrize("option", [*_options("logger"), "none"])
def test_logger_options(option, tmp_path):
    cfg = _compose([f"logger={option}"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
    loggers = entry._instantiate_all(cfg.get("logger"))
    assert (option == "none") == (not loggers)


@pytest.mark.parametrize("option", _options("callbacks"))
def test_callback_options(option):
    callbacks = entry._instantiate_all(_compose([f"callbacks={option}"]).get("callbacks"))
    assert (option == "none") == (not callbacks)


@pytest.mark.parametrize("option", _options("experiment") + _options("debug"))
def test_presets_compose(option):
    group = "experiment" if option in _options("experiment") else "debug"
    cfg = _compose([f"{group}={option}"])
    net = instantiate(cfg.model)  # the preset's network builds (within its architecture's limits)
    assert net.receptive_radius(8) > 0
    assert cfg.trainer.max_epochs >= 1 or cfg.trainer.max_steps >= 1


def test_paper_preset_is_the_paper():
    cfg = _compose(["experiment=paper"])
    assert (cfg.model.depth, cfg.model.width) == (20, 64)
    assert (cfg.dataset.patch_size, cfg.dataset.batch_size) == (41, 64)
    assert (cfg.optimizer.lr, cfg.optimizer.momentum, cfg.optimizer.weight_decay) == (0.1, 0.9, 1e-4)
    assert cfg.module.clip_theta == 0.01 and cfg.trainer.max_epochs == 200 and cfg.module.scheduler.gamma == 0.1


def test_gpus_alias_maps_to_accelerator():
    cfg = _compose(["trainer.gpus=0"])
    assert entry.trainer_kwargs(cfg.trainer)["accelerator"] == "cpu"
    if torch.cuda.device_count() == 0:
        with pytest.raises(ConfigError, match=r"no|GPU"):
            entry.trainer_kwargs(_compose(["trainer.gpus=1"]).trainer)


@pytest.mark.parametrize("override", ["dataset=mutli", "model.dpeth=20", "+optimizer=adamw"])
def test_typos_are_rejected_at_composition(override):
    with pytest.raises(ConfigCompositionException):
        _compose([override])
