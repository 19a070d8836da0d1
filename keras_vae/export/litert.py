"""LiteRT (TFLite) export: one file per variant, builtin ops only."""

import json
import os
import re
import tempfile
import warnings

import numpy as np
import tensorflow as tf

from keras_vae import files
from keras_vae.distributions import device_densities
from keras_vae.export import signatures

#: Variant names on the command line (`--quantize`) and their file suffixes.
VARIANTS = {"none": "float32", "float16": "float16", "dynamic": "dynamic", "int8": "int8"}


def export_litert(vae, out_dir, model_name="vae", quantize=("none",),
                  overwrite=False, dataset=None, batch_sizes=signatures.BATCH_SIZES):
    """Write `<out_dir>/<model_name>_<variant>.tflite` for each variant.

    Every shape in the files is fixed, so every LiteRT runtime runs them
    (LiteRT.js refuses a dynamic batch dimension). For each batch size B
    of `batch_sizes` each file has the signatures `decode_<B>` (z
    `[B, latent_dim]` → B images), `sample_<B>` (temperature → B images and their codes z
    from the prior, the noise scaled by the temperature) and
    `sample_<sampler>_<B>` for each fitted sampler, and `score_<B>` (x
    `[B, ...]` → score, threshold, is_anomaly) for a model with an anomaly
    detector; a conditional model's
    also take labels `[B]`. `keras_vae.edge` runs
    whole batches and trims. Variants: `"none"` (float32), `"float16"`
    (float16 weights), `"dynamic"` (int8 weights, dynamic-range
    activations) and `"int8"` (int8 weights and activations, calibrated on
    draws from the prior).

    A `<model_name>_metadata.json` file beside them describes the model.

    Returns:
        `{variant: path}`.
    """
    paths = litert_paths(out_dir, model_name, quantize, overwrite)
    functions = signatures.fixed_shape_functions(vae, batch_sizes)
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as saved_model:
        with device_densities.device_graph():  # no float64, no triangular solve
            signatures.write_archive(vae, saved_model, list(functions), functions=functions)
        for variant, path in paths.items():
            content = convert(saved_model, variant, vae.latent_dim, signature_keys=functions,
                              num_classes=vae.num_classes,
                              score_images=_score_images(vae) if variant == "int8" else None)
            _write_bytes(path, content)
    write_metadata(vae, out_dir, model_name, dataset, batch_sizes)
    return paths


def write_metadata(vae, out_dir, model_name="vae", dataset=None,
                   batch_sizes=signatures.BATCH_SIZES):
    """Write `<out_dir>/<model_name>_metadata.json`, which describes the files."""
    text = json.dumps(signatures.metadata(vae, dataset, batch_sizes=batch_sizes), indent=2)
    _write_bytes(os.path.join(out_dir, f"{model_name}_metadata.json"), text.encode())


def litert_paths(out_dir, model_name, quantize, overwrite=False):
    """`{variant: path}` of the files to write; raises if any exists."""
    unknown = sorted(set(quantize) - set(VARIANTS))
    if unknown:
        raise ValueError(
            f"Unknown quantization: {', '.join(unknown)}. Expected some of "
            f"{list(VARIANTS)}."
        )
    paths = {v: os.path.join(out_dir, f"{model_name}_{VARIANTS[v]}.tflite") for v in quantize}
    existing = [p for p in paths.values() if os.path.exists(p)]
    if existing and not overwrite:
        raise FileExistsError(
            f"{', '.join(existing)} already exist(s). Pass overwrite=True "
            "(--overwrite) to replace, or choose another output folder."
        )
    return paths


def convert(saved_model_dir, variant="none", latent_dim=None,
            signature_keys=("decode_1", "sample_1"), num_classes=None, score_images=None):
    """Convert a SavedModel's signatures to LiteRT with builtin ops only."""
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=list(signature_keys))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if variant == "int8":
        converter.representative_dataset = lambda: _calibration(
            latent_dim, signature_keys, num_classes, score_images=score_images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                               tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        with warnings.catch_warnings():
            # int8 calibration runs TF's own deprecated interpreter internally.
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
            return converter.convert()
    except Exception as error:  # the converter raises ConverterError and others
        ops = sorted(set(re.findall(r"\btf\.(\w+)", str(error))))
        if not ops:
            raise
        raise ValueError(
            f"LiteRT has no builtin kernel for the op(s) {', '.join(ops)} used by "
            "the model, so the file would fail on a device. Common cause: "
            "keras.random or tf.random.stateless_* ops (use tf.random.normal) "
            "or custom layers."
        ) from None


def _score_images(vae, count=64):
    """Inputs like the data for calibrating `score_<B>`: the model's decoded
    samples (grey levels), where the model has a detector."""
    if vae.detector is None:
        return None
    labels = np.arange(count) % vae.num_classes if vae.num_classes else None
    return np.asarray(vae.sample(count, seed=0, labels=labels), "float32")


def _calibration(latent_dim, signature_keys, num_classes=None, images=512,
                 score_images=None):
    """Representative inputs for int8 calibration of the fixed-shape
    signatures: about `images` codes z drawn from N(0, I) for each (and
    labels cycling through the classes of a conditional model); for
    `score_<B>`, batches of `score_images`."""
    rng = np.random.default_rng(0)
    for key in signature_keys:
        size = int(key.rsplit("_", 1)[1])
        labels = {} if not num_classes else {
            "labels": (np.arange(size) % num_classes).astype("int32")}
        if key.startswith("score"):
            for _ in range(4):
                rows = rng.integers(0, len(score_images), size)
                yield key, {"x": score_images[rows], **labels}
            continue
        for _ in range(max(1, images // size) if key.startswith("decode") else 4):
            if key.startswith("decode"):
                yield key, {"z": rng.standard_normal((size, latent_dim)).astype("float32"),
                            **labels}
            else:
                yield key, {"temperature": np.float32(1.0), **labels}


def _write_bytes(path, content):
    files.write_bytes(path, content)
