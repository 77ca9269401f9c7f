"""Network architectures only: no training logic, no Lightning, no Hydra."""

from afm_sr.models.vdsr import VDSR

__all__ = ["VDSR"]
