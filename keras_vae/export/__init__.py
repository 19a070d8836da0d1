"""Export a trained VAE for TF Serving (SavedModel) and devices (LiteRT)."""

from keras_vae.export.litert import VARIANTS, convert, export_litert
from keras_vae.export.saved_model import export_saved_model, warmup_requests
from keras_vae.export.signatures import MAX_SAMPLES, metadata, serving_functions

__all__ = [
    "MAX_SAMPLES",
    "VARIANTS",
    "convert",
    "export_litert",
    "export_saved_model",
    "metadata",
    "serving_functions",
    "warmup_requests",
]
