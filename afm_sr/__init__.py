"""afm-sr: VDSR super-resolution for AFM height maps, in physical units."""

from __future__ import annotations

__version__ = "0.1.0"

#: Public names imported on first use, so ``import afm_sr`` stays cheap (no torch) and free of side effects.
_LAZY = {"enhance": "afm_sr.infer", "check_gain": "afm_sr.infer", "adapt": "afm_sr.infer.adapt"}


def __getattr__(name: str) -> object:
    """Import ``afm_sr.enhance``, ``afm_sr.check_gain`` and ``afm_sr.adapt`` when first asked for."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'afm_sr' has no attribute {name!r}")
