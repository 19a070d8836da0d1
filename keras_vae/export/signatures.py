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
        "outputs": "images: the mean of p(x|z), values in data space",
    }


def _checked(condition, message, checked):
    if not checked:
        return []
    return [tf.debugging.Assert(condition, [message])]


def serving_functions(vae, checked=True, dataset=None):
    """Return `{name: (function, input_signature)}` for export."""
    d, shape = vae.latent_dim, tuple(vae.data_shape)

    def decode(z):
        with tf.control_dependencies(_checked(
                tf.equal(tf.shape(z)[1], d),
                f"z must have shape [batch, {d}]: latent_dim is {d}.", checked)):
            return {"images": vae.decode(tf.identity(z))}

    def _n_checks(n):
        return _checked(
            tf.logical_and(n >= 1, n <= MAX_SAMPLES),
            f"n must be an integer in [1, {MAX_SAMPLES}]; request several "
            f"batches for more than {MAX_SAMPLES} images.", checked)

    def sample(n):
        with tf.control_dependencies(_n_checks(n)):
            return {"images": vae.decode(vae.prior.sample(tf.identity(n)))}

    def sample_seeded(n, seed):
        with tf.control_dependencies(_n_checks(n)):
            stateless_seed = tf.stack([tf.constant(0, tf.int64), seed])
            return {"images": vae.decode(vae.prior.sample(tf.identity(n), seed=stateless_seed))}

    def encode(x):
        with tf.control_dependencies(_checked(
                tf.reduce_all(tf.equal(tf.shape(x)[1:], shape)),
                f"x must have shape [batch, {', '.join(map(str, shape))}].", checked)):
            loc, scale = vae.encode(tf.identity(x))
            return {"loc": loc, "scale": scale}

    text = json.dumps(metadata(vae, dataset))
    z_spec = tf.TensorSpec([None, d], tf.float32, name="z")
    n_spec = tf.TensorSpec([], tf.int32, name="n")
    return {
        "decode": (decode, [z_spec]),
        "sample": (sample, [n_spec]),
        "sample_seeded": (sample_seeded, [n_spec, tf.TensorSpec([], tf.int64, name="seed")]),
        "encode": (encode, [tf.TensorSpec((None,) + shape, tf.float32, name="x")]),
        "metadata": (lambda: {"json": tf.constant(text)}, []),
    }


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
