"""afm-sr: VDSR super-resolution for AFM height maps, in physical units."""

__version__ = "0.1.0"
