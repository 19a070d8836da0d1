"""The functions an exported decoder serves, with their input specs.

`decode` (z → images), `sample` (n → images, z drawn from the prior inside
the graph), `sample_seeded` (n, seed → reproducible images), `encode`
(x → posterior loc and scale) and `metadata` (→ a JSON string).

With `checked=True` each function first asserts its input (z width, n
range, image shape), so a bad request gets a message instead of a matrix
error. LiteRT has no builtin assert op, so its functions are unchecked and
the on-device code checks inputs in Python (see `keras_vae.edge`).
"""

import json

import keras
import tensorflow as tf

import keras_vae
from keras_vae.edge import MAX_SAMPLES


def metadata(vae, dataset=None):
    """What a client needs to know about an exported model."""
    return {
        "package": "keras_vae",
        "package_version": keras_vae.__version__,
        "latent_dim": vae.latent_dim,
        "image_shape": list(vae.data_shape),
        "likelihood": type(vae.likelihood).__name__,
        "prior": type(vae.prior).__name__,
        "training_data": dataset,
        "max_samples": MAX_SAMPLES,
        "num_classes": getattr(vae, "num_classes", None),
        "outputs": "images: the mean of p(x|z), values in data space",
    }


def _checked(condition, message, checked):
    if not checked:
        return []
    return [tf.debugging.Assert(condition, [message])]


def serving_functions(vae, checked=True, dataset=None):
    """Return `{name: (function, input_signature)}` for export.

    A `ConditionalVAE` takes `labels` (int32 `[batch]`) beside `z` and `x`,
    and its `sample` signatures take the labels instead of `n`.
    """
    d, shape = vae.latent_dim, tuple(vae.data_shape)
    conditional = getattr(vae, "num_classes", None)

    def decode(z, labels=None):
        with tf.control_dependencies(_checked(
                tf.equal(tf.shape(z)[1], d),
                f"z must have shape [batch, {d}]: latent_dim is {d}.", checked)
                + _label_checks(labels, conditional, checked)):
            return {"images": vae.decode(tf.identity(z), **_labels(labels))}

    def _n_checks(n):
        return _checked(
            tf.logical_and(n >= 1, n <= MAX_SAMPLES),
            f"n must be an integer in [1, {MAX_SAMPLES}]; request several "
            f"batches for more than {MAX_SAMPLES} images.", checked)

    def sample(n, labels=None):
        with tf.control_dependencies(_n_checks(n) + _label_checks(labels, conditional, checked)):
            z = vae.prior.sample(tf.identity(n))
            return {"images": vae.decode(z, **_labels(labels))}

    def sample_seeded(n, seed, labels=None):
        with tf.control_dependencies(_n_checks(n) + _label_checks(labels, conditional, checked)):
            stateless_seed = tf.stack([tf.constant(0, tf.int64), seed])
            z = vae.prior.sample(tf.identity(n), seed=stateless_seed)
            return {"images": vae.decode(z, **_labels(labels))}

    def encode(x, labels=None):
        with tf.control_dependencies(_checked(
                tf.reduce_all(tf.equal(tf.shape(x)[1:], shape)),
                f"x must have shape [batch, {', '.join(map(str, shape))}].", checked)
                + _label_checks(labels, conditional, checked)):
            inputs = tf.identity(x) if labels is None else {"images": x, "labels": labels}
            loc, scale = vae.encode(inputs)
            return {"loc": loc, "scale": scale}

    text = json.dumps(metadata(vae, dataset))
    z_spec = tf.TensorSpec([None, d], tf.float32, name="z")
    n_spec = tf.TensorSpec([], tf.int32, name="n")
    seed_spec = tf.TensorSpec([], tf.int64, name="seed")
    x_spec = tf.TensorSpec((None,) + shape, tf.float32, name="x")
    functions = {
        "decode": (decode, [z_spec]),
        "sample": (sample, [n_spec]),
        "sample_seeded": (sample_seeded, [n_spec, seed_spec]),
        "encode": (encode, [x_spec]),
        "metadata": (lambda: {"json": tf.constant(text)}, []),
    }
    if not conditional:
        return functions
    labels_spec = tf.TensorSpec([None], tf.int32, name="labels")
    # Conditional sampling: n images, one per label, so n = len(labels).
    return {
        "decode": (decode, [z_spec, labels_spec]),
        "sample": (lambda labels: sample(tf.shape(labels)[0], labels), [labels_spec]),
        "sample_seeded": (lambda labels, seed: sample_seeded(tf.shape(labels)[0], seed, labels),
                          [labels_spec, seed_spec]),
        "encode": (encode, [x_spec, labels_spec]),
        "metadata": functions["metadata"],
    }


def _labels(labels):
    return {} if labels is None else {"labels": labels}


def _label_checks(labels, num_classes, checked):
    if labels is None:
        return []
    return _checked(
        tf.logical_and(tf.reduce_all(labels >= 0), tf.reduce_all(labels < num_classes)),
        f"labels must be integers in [0, {num_classes}).", checked)


def write_archive(vae, path, names, checked=True, dataset=None):
    """Write a SavedModel at `path` with the named serving functions.

    The first name is also `serving_default`.
    """
    functions = serving_functions(vae, checked=checked, dataset=dataset)
    archive = keras.export.ExportArchive()
    archive.track(vae)
    for name in names:
        function, signature = functions[name]
        archive.add_endpoint(name, function, input_signature=signature)
    archive.write_out(path, verbose=False)
