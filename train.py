"""Train VDSR on AFM height maps: python train.py [experiment=quick] [dataset=mono] [trainer.gpus=1] ..."""

import hydra
from omegaconf import DictConfig

from afm_sr import entry


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Compose conf/train.yaml, fit, test the best checkpoint, write Table 1; return the monitored metric."""
    metrics, _ = entry.run(entry.train, cfg)
    return entry.optimized_metric(metrics, cfg)


if __name__ == "__main__":
    main()
