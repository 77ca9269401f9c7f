import importlib

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from support import REPO, compose_config

MATERIALS = ["ceramic", "nanoparticles", "oxide_crystals", "thin_film", "polymer_fibrils", "polymer_lamellae",
             "bone", "nacre", "single_crystal"]


def generator(name: str):
    """The material's generator with the ranges of conf/material/<name>.yaml (the one place they are written)."""
    return instantiate(OmegaConf.load(REPO / "conf" / "material" / f"{name}.yaml").generator)


@pytest.mark.parametrize("name", MATERIALS)
def test_shape_dtype_finite_and_height_range(name: str) -> None:
    h = generator(name)(np.random.default_rng(0), 64, 20e-9)
    assert h.shape == (64, 64)
    assert h.dtype == np.float64
    assert np.isfinite(h).all()
    assert 1e-11 < h.std() < 2e-6  # meters: between a tenth of an angstrom and microns
    assert np.ptp(h) > 0


@pytest.mark.parametrize("name", MATERIALS)
def test_same_seed_same_image_other_seed_other_image(name: str) -> None:
    gen = generator(name)
    a, b = gen(np.random.default_rng(1), 48, 20e-9), gen(np.random.default_rng(1), 48, 20e-9)
    c = gen(np.random.default_rng(2), 48, 20e-9)
    assert np.array_equal(a, b)
    assert np.abs(a - c).max() > 0.1 * a.std()


@pytest.mark.parametrize("name", MATERIALS)
def test_config_builds_material_with_its_scan_size(name: str) -> None:
    cfg = compose_config(["dataset=mono", f"material@dataset.materials.ceramic={name}", "seed=5",
                          "dataset.materials.ceramic.n_images=2", "dataset.materials.ceramic.n_px=32"])
    material = instantiate(cfg.dataset.materials.ceramic)
    maps = material.load()
    lo, hi = cfg.dataset.materials.ceramic.scan_size_m
    for m in maps:
        assert m.shape == (32, 32)
        assert lo <= m.scan_size[0] <= hi
        assert np.isfinite(m.data).all()
    assert material.name == name and material.artefacts is not None


@pytest.mark.parametrize("name", MATERIALS)
def test_generators_have_no_ranges_of_their_own(name: str) -> None:
    """A range lives in conf/material/ only: calling a generator without them names what is missing."""
    bare = importlib.import_module(f"afm_sr.materials.{name}").generate
    with pytest.raises(TypeError, match="required keyword-only argument"):
        bare(np.random.default_rng(0), 32, 20e-9)
