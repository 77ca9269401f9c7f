"""Inference: safe weights loading, tiled super-resolution of whole height maps, the gain check."""

from afm_sr.infer.devices import resolve_device, resolve_precision
from afm_sr.infer.pipeline import GainResult, check_gain, enhance
from afm_sr.infer.preview import save_preview
from afm_sr.infer.weights import ModelInfo, SRModel, check_gains, default_weights_path, export_weights, load_model

__all__ = ["GainResult", "ModelInfo", "SRModel", "check_gain", "check_gains", "default_weights_path", "enhance",
           "export_weights", "load_model", "resolve_device", "resolve_precision", "save_preview"]
