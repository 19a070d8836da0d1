"""SavedModel export for TF Serving: versioned folders, signatures, warm-up."""

import json
import os
import shutil

import numpy as np
import tensorflow as tf

from keras_vae.export import signatures

SIGNATURES = ("decode", "sample", "sample_seeded", "encode", "metadata")
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
METADATA_FILE = os.path.join("assets.extra", "metadata.json")


def export_saved_model(vae, base_dir, model_name="vae", version=None,
                       overwrite=False, dataset=None):
    """Write `<base_dir>/<model_name>/<version>/`, the layout TF Serving loads.

    Signatures: `decode` (also `serving_default`), `sample`, `sample_seeded`,
    `encode` and `metadata`; warm-up requests and `metadata.json` go in
    `assets.extra/`. The version is written under a temporary name and
    renamed when complete, so TF Serving never sees half an export.

    Args:
        vae: a `keras_vae.VAE`.
        base_dir: TF Serving's model base folder is `base_dir/model_name`.
        model_name: the name clients use in requests.
        version: a positive int; by default one more than the newest.
        overwrite: replace an existing version (never done otherwise).
        dataset: the training data's name, stored in the metadata.

    Returns:
        The path of the version folder.
    """
    target = version_path(base_dir, model_name, version, overwrite)
    temporary = os.path.join(os.path.dirname(target), f".partial-{os.path.basename(target)}")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        signatures.write_archive(vae, temporary, SIGNATURES + tuple(
            signatures.sampler_signatures(vae)), dataset=dataset)
        os.makedirs(os.path.join(temporary, "assets.extra"), exist_ok=True)
        with open(os.path.join(temporary, METADATA_FILE), "w") as f:
            json.dump(signatures.metadata(vae, dataset), f, indent=2)
        write_warmup_requests(os.path.join(temporary, WARMUP_FILE), model_name,
                              vae.latent_dim, tuple(vae.data_shape),
                              vae.num_classes)
    except BaseException:  # a full disk, a stop: no half-written version is left
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    shutil.rmtree(target, ignore_errors=True)
    os.replace(temporary, target)
    return target


def version_path(base_dir, model_name, version=None, overwrite=False):
    """The version folder to write; raises if it exists and not `overwrite`."""
    model_dir = os.path.join(base_dir, model_name)
    version = _next_version(model_dir) if version is None else _check_version(version)
    target = os.path.join(model_dir, str(version))
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(
            f"The export {target} exists. Choose another version, or pass "
            "overwrite=True (--overwrite) to replace it."
        )
    return target


def _next_version(model_dir):
    versions = [int(name) for name in os.listdir(model_dir) if name.isdigit()] \
        if os.path.isdir(model_dir) else []
    return max(versions, default=0) + 1


def _check_version(version):
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(
            f"Expected a positive integer version (TF Serving loads integer "
            f"folders). Received: version={version!r}"
        )
    return version


def warmup_requests(model_name, latent_dim, image_shape, num_classes=None):
    """PredictionLog records that exercise each signature once."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    inputs = {
        "decode": {"z": np.zeros((1, latent_dim), "float32")},
        "sample": {"n": np.array(1, "int32")},
        "sample_seeded": {"n": np.array(1, "int32"), "seed": np.array(0, "int64")},
        "encode": {"x": np.zeros((1,) + image_shape, "float32")},
    }
    if num_classes:  # a conditional model: labels, and sampling by labels
        labels = np.zeros(1, "int32")
        inputs = {
            "decode": {**inputs["decode"], "labels": labels},
            "sample": {"labels": labels},
            "sample_seeded": {"labels": labels, "seed": np.array(0, "int64")},
            "encode": {**inputs["encode"], "labels": labels},
        }
    for name, values in inputs.items():
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name=name))
        for key, value in values.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        yield prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request))


def write_warmup_requests(path, model_name, latent_dim, image_shape, num_classes=None):
    """Write TF Serving's warm-up file (a TFRecord of PredictionLog)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for log in warmup_requests(model_name, latent_dim, image_shape, num_classes):
            writer.write(log.SerializeToString())
