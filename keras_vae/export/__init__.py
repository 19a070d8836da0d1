"""Export a trained VAE for TF Serving (SavedModel), devices (LiteRT) and the
browser (a web page running the LiteRT files with LiteRT.js)."""

from keras_vae.export.litert import VARIANTS, convert, export_litert
from keras_vae.export.saved_model import export_saved_model, warmup_requests
from keras_vae.export.signatures import (
                                        BATCH_SIZES,
                                        MAX_SAMPLES,
                                        fixed_shape_functions,
                                        metadata,
                                        serving_functions,
)
from keras_vae.export.web import export_web

__all__ = [
    "BATCH_SIZES",
    "MAX_SAMPLES",
    "VARIANTS",
    "convert",
    "export_litert",
    "export_saved_model",
    "export_web",
    "fixed_shape_functions",
    "metadata",
    "serving_functions",
    "warmup_requests",
]
