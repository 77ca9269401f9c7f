"""Height maps as napari image layers and back: heights as data, pixel size as scale, file and channel as metadata.

A layer made here has ``scale`` = the pixel size in meters and ``units`` = meters, so napari's scale bar and
the cursor position read in µm; its metadata says the file, the channel and the unit of the heights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pint
from napari.layers import Image, Layer

from afm_sr.errors import InputError
from afm_sr.io import HeightMap

#: What the reader and the widgets hand napari: (data, layer keyword arguments, layer type).
LayerData = tuple[np.ndarray, dict[str, Any], str]
#: The colour map AFM software shows heights with.
COLORMAP = "afmhot"
_METER = pint.get_application_registry().meter


def layer_data(hm: HeightMap, name: str, **kwargs: Any) -> LayerData:
    """An image layer of ``hm``: heights, ``scale`` = (dy, dx) in meters, metadata file/channel/units.

    ``kwargs`` override the layer arguments (a result layer passes its own scale and translate).
    """
    known = not hm.metadata.get("pixel_size_unknown")
    metadata = {"file": "" if hm.source is None else str(hm.source), "channel": hm.channel, "units": hm.z_unit,
                "heightmap": dict(hm.metadata)}
    args: dict[str, Any] = {"name": name, "scale": (hm.pixel_size[1], hm.pixel_size[0]), "metadata": metadata,
                            "colormap": COLORMAP, **({"units": ("m", "m")} if known else {})}
    return hm.data, {**args, **kwargs}, "image"


def _pixel_size_m(layer: Layer) -> tuple[float, float] | None:
    """(dx, dy) in meters from the layer's scale and units, or None where its units are not lengths."""
    sizes = []
    for value, unit in zip(layer.scale[-2:], layer.units[-2:], strict=True):
        quantity = float(value) * pint.Quantity(1, unit)
        if quantity.dimensionality != _METER.dimensionality:
            return None
        sizes.append(float(quantity.to(_METER).magnitude))
    return sizes[1], sizes[0]


def layer_heightmap(layer: Layer | None) -> HeightMap:
    """The 2-D height map a layer shows, with its pixel size; InputError (afm-sr's message) for a bad layer.

    RGB, 3-D and not-finite layers are refused here, before any work starts; a layer whose scale has no
    length unit keeps its scale as pixel size and is flagged ``pixel_size_unknown`` (as ``enhance`` does).
    """
    if layer is None:
        raise InputError("no layer chosen: open a scan (File > Open) or a sample (File > Open Sample > afm-sr)")
    if not isinstance(layer, Image):
        raise InputError(f"layer {layer.name!r} is a {type(layer).__name__} layer; afm-sr needs an image layer of "
                         "heights")
    if layer.rgb:
        raise InputError(f"layer {layer.name!r} is an RGB image (colours, not heights); open the height channel "
                         "of the scan instead")
    data = np.asarray(layer.data[0] if layer.multiscale else layer.data)
    if data.ndim != 2:
        raise InputError(f"layer {layer.name!r} is {data.ndim}-D (shape {data.shape}); afm-sr works on one 2-D "
                         "height map: split the stack and pick one image")
    finite = np.isfinite(data)
    if not finite.all():
        what = "every value is" if not finite.any() else f"{int((~finite).sum())} of {data.size} values are"
        raise InputError(f"layer {layer.name!r}: {what} NaN or Inf; crop or fill them (e.g. in Gwyddion) first")
    meta = layer.metadata
    pixel_size = _pixel_size_m(layer)
    hm = HeightMap(data, pixel_size or (float(layer.scale[-1]), float(layer.scale[-2])),
                   channel=str(meta.get("channel", layer.name)), z_unit=str(meta.get("units", "m")),
                   source=Path(meta["file"]) if meta.get("file") else None,
                   metadata=dict(meta.get("heightmap", {})))
    if pixel_size is None:
        hm.metadata["pixel_size_unknown"] = True
    return hm


def upscaled_geometry(layer: Layer, scale: int) -> dict[str, Any]:
    """``scale``, ``translate`` and ``units`` that lay an image with ``scale`` times the pixels over ``layer``.

    napari puts pixel centres at integer data coordinates, so input pixel ``j`` covers ``[j - 1/2, j + 1/2]``.
    Upscaling by ``s`` (MATLAB's imresize convention, which afm-sr's bicubic and model follow) splits it
    into ``s`` output pixels whose centres are at ``j - 1/2 + (k + 1/2) / s``, ``k = 0..s-1``: output pixel 0
    is centred ``(s - 1) / (2 s)`` input pixels before input pixel 0, and the output's pixel size is
    the input's divided by ``s``. Both images then cover exactly the same area of the world.
    """
    step = np.asarray(layer.scale[-2:], dtype=float)
    origin = np.asarray(layer.translate[-2:], dtype=float)
    return {"scale": tuple(step / scale), "translate": tuple(origin - step * (scale - 1) / (2 * scale)),
            "units": tuple(str(u) for u in layer.units[-2:])}
