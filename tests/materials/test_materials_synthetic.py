import importlib
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from afm_sr.materials import SyntheticMaterial

MATERIALS = ["ceramic", "nanoparticles", "oxide_crystals", "thin_film", "polymer_fibrils", "polymer_lamellae",
             "bone", "nacre", "single_crystal"]
CONF = Path(__file__).resolve().parents[2] / "conf" / "material"


def generator(name: str):
    return importlib.import_module(f"afm_sr.materials.{name}").generate


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
    cfg = OmegaConf.merge({"seed": 5}, {"material": OmegaConf.load(CONF / f"{name}.yaml")})
    spec = OmegaConf.to_container(cfg.material, resolve=True)
    gen_spec, art_spec = spec.pop("generator"), spec.pop("artefacts")
    gen_kwargs = {k: v for k, v in gen_spec.items() if not k.startswith("_")}
    art_kwargs = {k: v for k, v in art_spec.items() if not k.startswith("_")}
    instrument = importlib.import_module("afm_sr.materials.instrument").Instrument(**art_kwargs)
    spec.pop("_target_")
    spec.update(n_images=2, n_px=32)
    material = SyntheticMaterial(generator=lambda rng, n, px: generator(name)(rng, n, px, **gen_kwargs),
                                 artefacts=instrument, **spec)
    maps = material.load()
    lo, hi = cfg.material.scan_size_m
    for m in maps:
        assert m.shape == (32, 32)
        assert lo <= m.scan_size[0] <= hi
        assert np.isfinite(m.data).all()
    assert spec["name"] == name
