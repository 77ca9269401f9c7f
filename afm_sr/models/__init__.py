"""Network architectures only: no training logic, no Lightning, no Hydra. Each meets ``SRNet``'s contract."""

from afm_sr.models.base import SRNet
from afm_sr.models.multiscale import MultiScaleResNet
from afm_sr.models.vdsr import VDSR

#: The architectures a weights file may name (its ``_target_``): nothing outside this list is ever built.
ARCHITECTURES: dict[str, type[SRNet]] = {f"afm_sr.models.{c.__name__}": c for c in (VDSR, MultiScaleResNet)}

__all__ = ["ARCHITECTURES", "VDSR", "MultiScaleResNet", "SRNet"]
