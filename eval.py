"""Evaluate a checkpoint beside bicubic: python eval.py ckpt_path=outputs/.../checkpoints/best.ckpt ..."""

import hydra
from omegaconf import DictConfig

from afm_sr import entry


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> dict[str, float]:
    """Compose conf/eval.yaml, test the checkpoint and bicubic, write Table 1 (md/csv) into the run folder."""
    metrics, _ = entry.run(entry.evaluate, cfg)
    return metrics


if __name__ == "__main__":
    main()
