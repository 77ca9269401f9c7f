"""Build the synthetic materials from conf/material/*.yaml, as train.py would (Hydra instantiate)."""

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from afm_sr.materials import SyntheticMaterial

ROOT = Path(__file__).resolve().parents[2]
MATERIALS = ["ceramic", "nanoparticles", "oxide_crystals", "thin_film", "polymer_fibrils", "polymer_lamellae",
             "bone", "nacre", "single_crystal"]


def material(name: str, seed: int = 0, **overrides) -> SyntheticMaterial:
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["dataset=mono", f"material@dataset.materials.ceramic={name}", f"seed={seed}"])
    m = instantiate(cfg.dataset.materials.ceramic)
    for key, value in overrides.items():
        setattr(m, key, value)
    return m
