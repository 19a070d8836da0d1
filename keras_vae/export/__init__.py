"""Export a trained VAE for TF Serving (SavedModel) and devices (LiteRT)."""

from keras_vae.export.litert import VARIANTS, convert, export_litert
from keras_vae.export.saved_model import export_saved_model, warmup_requests
from keras_vae.export.signatures import (
                                        BATCH_SIZES,
                                        MAX_SAMPLES,
                                        fixed_shape_functions,
                                        metadata,
                                        serving_functions,
)

__all__ = [
    "BATCH_SIZES",
    "MAX_SAMPLES",
    "VARIANTS",
    "convert",
    "export_litert",
    "export_saved_model",
    "fixed_shape_functions",
    "metadata",
    "serving_functions",
    "warmup_requests",
]
