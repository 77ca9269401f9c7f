"""Build the synthetic materials from conf/material/*.yaml, as train.py would (Hydra instantiate)."""

from pathlib import Path

from hydra.utils import instantiate
from omegaconf import OmegaConf

from afm_sr.materials import SyntheticMaterial

ROOT = Path(__file__).resolve().parents[2]
MATERIALS = ["ceramic", "nanoparticles", "oxide_crystals", "thin_film", "polymer_fibrils", "polymer_lamellae",
             "bone", "nacre", "single_crystal"]


def material(name: str, seed: int = 0, **overrides) -> SyntheticMaterial:
    cfg = OmegaConf.merge({"seed": seed}, {"m": OmegaConf.load(ROOT / "conf" / "material" / f"{name}.yaml")})
    m = instantiate(cfg.m)
    for key, value in overrides.items():
        setattr(m, key, value)
    return m
