"""Sources of HR height maps: synthetic AFM-like materials and folders of real scans."""

from afm_sr.materials.base import Material, SyntheticMaterial

__all__ = ["Material", "SyntheticMaterial"]
