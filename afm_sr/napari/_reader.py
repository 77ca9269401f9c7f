"""The reader and sample-data contributions: AFM files and a synthetic scan as image layers in meters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from afm_sr.errors import AFMSRError
from afm_sr.io import read
from afm_sr.io.formats import format_by_name
from afm_sr.materials import SyntheticMaterial
from afm_sr.materials.ceramic import generate as ceramic
from afm_sr.materials.instrument import Instrument
from afm_sr.napari._layers import LayerData, layer_data
from afm_sr.napari._notify import notify_error

PathOrPaths = str | Sequence[str]
#: napari's "read, but no layer" answer: the reader took the file and said why it opened nothing.
NO_LAYER: list[tuple[None]] = [(None,)]


def _paths(path: PathOrPaths) -> list[str]:
    """One path or several as a list."""
    return [path] if isinstance(path, str | Path) else [str(p) for p in path]


def get_reader(path: PathOrPaths) -> Callable[[PathOrPaths], list[LayerData] | list[tuple[None]]] | None:
    """``read_layers`` where every path has a suffix afm-sr reads, else None (napari then asks other readers)."""
    paths = _paths(path)
    return read_layers if paths and all(format_by_name(Path(p)) for p in paths) else None


def read_layers(path: PathOrPaths) -> list[LayerData] | list[tuple[None]]:
    """One image layer per file: the channel ``afm-sr info`` picks, in meters, never a dialog.

    A file that cannot be read becomes one ``afm-sr: error: ...`` notification, and the other files still
    open.
    """
    layers = []
    for p in _paths(path):
        try:
            hm = read(p)
        except AFMSRError as exc:
            notify_error(exc)
            continue
        layers.append(layer_data(hm, f"{Path(p).stem} {hm.channel}"))
    return layers or NO_LAYER


#: The sample: a granular ceramic (the paper's LAGP-like material) seen through a simulated instrument, one fixed
#: setting of each (conf/material/ceramic.yaml and conf/instrument/default.yaml hold the ranges training draws from).
SAMPLE = SyntheticMaterial(
    "ceramic", partial(ceramic, grain_size_m=0.5e-6, size_spread=0.35, aspect=0.25, faceted_fraction=0.2,
                       facet_slope=0.4, dome_exponent=0.6, height_jitter=0.25, groove_depth=0.2, groove_width_m=15e-9,
                       pores_per_grain=0.2, pore_size=0.2, waviness=0.3, roughness=0.02),
    n_images=1, n_px=256, scan_size_m=(4e-6, 4e-6),
    artefacts=Instrument(tip_radius_m=8e-9, tip_half_angle_deg=20.0, drift_px=1.0, creep_px=1.0, creep_lines=10.0,
                         line_offset=0.02, noisy_lines=1, noisy_line_amplitude=0.3, pink_noise=0.01, white_noise=0.01,
                         tilt=None, bow=None))


def sample_ceramic() -> list[LayerData]:
    """A 256 px, 4 µm synthetic ceramic scan (afm_sr.materials) with its pixel size."""
    return [layer_data(SAMPLE.image(0), "synthetic ceramic 4 um")]
