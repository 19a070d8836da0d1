"""The functions an exported decoder serves, with their input specs.

`decode` (z → images), `sample` (n → images, z drawn from the prior inside
the graph), `sample_seeded` (n, seed → reproducible images), `encode`
(x → posterior loc and scale), `score` (x → score, threshold, is_anomaly:
a model with an anomaly detector) and `metadata` (→ a JSON string): the
SavedModel's, with a dynamic batch dimension for TF Serving.

LiteRT files get `fixed_shape_functions` instead: every runtime accepts
them (LiteRT.js refuses a dynamic batch dimension), one signature per batch
size B: `decode_<B>`, `sample_<B>`, `sample_<sampler>_<B>` and `score_<B>`.

With `checked=True` each function first asserts its input (z width, n
range, image shape), so a bad request gets a message instead of a matrix
error. LiteRT has no builtin assert op, so its functions are unchecked and
the on-device code checks inputs in Python (see `keras_vae.edge`).
"""

import json

import keras
import tensorflow as tf

from keras_vae.distributions import standardized
from keras_vae.models import generation
from keras_vae.version import __version__

#: The largest n the exported `sample` signatures accept: a request for more
#: images is refused, since it would allocate n · prod(image_shape) floats at
#: once. Written into metadata.json as `max_samples`.
MAX_SAMPLES = 4096

#: The batch sizes of the LiteRT files' fixed-shape signatures by default
#: (`keras-vae export --batch-sizes`).
BATCH_SIZES = (1, 16, 64)


def metadata(vae, dataset=None, batch_sizes=None):
    """What a client needs to know about an exported model (with the batch
    sizes of its signatures, for fixed-shape LiteRT files)."""
    fixed = {} if batch_sizes is None else {"batch_sizes": sorted(batch_sizes)}
    return {**fixed,
        "package": "keras_vae",
        "package_version": __version__,
        "latent_dim": vae.latent_dim,
        # The layers of the code, z_1 first (a HierarchicalVAE has several).
        "latent_dims": list(vae.latent_dims),
        "image_shape": list(vae.data_shape),
        "likelihood": type(vae.likelihood).__name__,
        "prior": type(vae.prior).__name__,
        "samplers": {name: type(s).__name__ for name, s in vae.samplers.items()},
        "training_data": dataset,
        "max_samples": MAX_SAMPLES,
        "num_classes": vae.num_classes,
        "outputs": "images: the mean of p(x|z), values in data space",
        # A table's columns (the model takes and returns rows in their units).
        "columns": standardized.columns_of(vae.likelihood),
        "detector": None if vae.detector is None else {
            **vae.detector.get_config(), "score": type(vae.detector.score).__name__},
    }


def _checked(condition, message, checked):
    if not checked:
        return []
    return [tf.debugging.Assert(condition, [message])]


class _Endpoints:
    """The serving functions of one model, each checking its inputs first
    when `checked` (SavedModel) and running unchecked for LiteRT."""

    def __init__(self, vae, checked):
        self.vae, self.checked = vae, checked
        self.latent_dim, self.shape = vae.latent_dim, tuple(vae.data_shape)

    def _label_checks(self, labels):
        return _label_checks(labels, self.vae.num_classes, self.checked)

    def _n_checks(self, n):
        return _checked(
            tf.logical_and(n >= 1, n <= MAX_SAMPLES),
            f"n must be an integer in [1, {MAX_SAMPLES}]; request several "
            f"batches for more than {MAX_SAMPLES} images.", self.checked)

    def decode(self, z, labels=None):
        d = self.latent_dim
        with tf.control_dependencies(_checked(
                tf.equal(tf.shape(z)[1], d),
                f"z must have shape [batch, {d}]: latent_dim is {d}.", self.checked)
                + self._label_checks(labels)):
            return {"images": self.vae.decode(tf.identity(z), labels=labels)}

    def sample(self, n, labels=None, sampler=None):
        with tf.control_dependencies(self._n_checks(n) + self._label_checks(labels)):
            z = self.vae.sampler(sampler).sample(tf.identity(n))
            return {"images": self.vae.decode(z, labels=labels)}

    def sample_fixed(self, n, temperature, labels=None, sampler=None):
        """n images and their codes z, n a Python int: every shape is static
        (the codes let a caller interpolate between samples)."""
        z = generation.draw(self.vae.sampler(sampler), n, temperature=temperature)
        return {"images": self.vae.decode(z, labels=labels), "z": z}

    def sample_seeded(self, n, seed, labels=None, sampler=None):
        with tf.control_dependencies(self._n_checks(n) + self._label_checks(labels)):
            stateless_seed = tf.stack([tf.constant(0, tf.int64), seed])
            z = self.vae.sampler(sampler).sample(tf.identity(n), seed=stateless_seed)
            return {"images": self.vae.decode(z, labels=labels)}

    def encode(self, x, labels=None):
        with tf.control_dependencies(_checked(
                tf.reduce_all(tf.equal(tf.shape(x)[1:], self.shape)),
                f"x must have shape [batch, {', '.join(map(str, self.shape))}].",
                self.checked) + self._label_checks(labels)):
            loc, scale = self.vae.encode(self.vae.join_inputs(tf.identity(x), labels))
            return {"loc": loc, "scale": scale}

    def score(self, x, labels=None):
        """The detector's score of each example, its threshold and the flag
        score > threshold (`keras_vae.models.detectors`)."""
        detector = self.vae.detector
        with tf.control_dependencies(_checked(
                tf.reduce_all(tf.equal(tf.shape(x)[1:], self.shape)),
                f"x must have shape [batch, {', '.join(map(str, self.shape))}].",
                self.checked) + self._label_checks(labels)):
            values = detector.graph_scores(self.vae,
                                           self.vae.join_inputs(tf.identity(x), labels))
            threshold = tf.fill(tf.shape(values), tf.constant(detector.threshold, tf.float32))
            return {"score": values, "threshold": threshold,
                    "is_anomaly": tf.greater(values, threshold)}


def serving_functions(vae, checked=True, dataset=None):
    """Return `{name: (function, input_signature)}` for export.

    A `ConditionalVAE` takes `labels` (int32 `[batch]`) beside `z` and `x`,
    and its `sample` signatures take the labels instead of `n`.
    """
    endpoints = _Endpoints(vae, checked)
    text = json.dumps(metadata(vae, dataset))
    z_spec = tf.TensorSpec([None, vae.latent_dim], tf.float32, name="z")
    n_spec = tf.TensorSpec([], tf.int32, name="n")
    seed_spec = tf.TensorSpec([], tf.int64, name="seed")
    x_spec = tf.TensorSpec((None,) + tuple(vae.data_shape), tf.float32, name="x")
    functions = {"metadata": (lambda: {"json": tf.constant(text)}, [])}
    if not vae.num_classes:
        functions.update(decode=(endpoints.decode, [z_spec]), encode=(endpoints.encode, [x_spec]))
        if vae.detector is not None:
            functions["score"] = (endpoints.score, [x_spec])
        for name in [None, *vae.samplers]:  # the prior, then each fitted sampler
            suffix = f"_{name}" if name else ""
            functions["sample" + suffix] = (
                lambda n, s=name: endpoints.sample(n, sampler=s), [n_spec])
            functions["sample_seeded" + suffix] = (
                lambda n, seed, s=name: endpoints.sample_seeded(n, seed, sampler=s),
                [n_spec, seed_spec])
        return functions
    labels_spec = tf.TensorSpec([None], tf.int32, name="labels")
    functions.update(decode=(endpoints.decode, [z_spec, labels_spec]),
                     encode=(endpoints.encode, [x_spec, labels_spec]))
    if vae.detector is not None:
        functions["score"] = (endpoints.score, [x_spec, labels_spec])
    # Conditional sampling: n images, one per label, so n = len(labels).
    for name in [None, *vae.samplers]:
        suffix = f"_{name}" if name else ""
        functions["sample" + suffix] = (
            lambda labels, s=name: endpoints.sample(tf.shape(labels)[0], labels, s),
            [labels_spec])
        functions["sample_seeded" + suffix] = (
            lambda labels, seed, s=name: endpoints.sample_seeded(
                tf.shape(labels)[0], seed, labels, s), [labels_spec, seed_spec])
    return functions


def fixed_shape_functions(vae, batch_sizes=BATCH_SIZES):
    """`{name: (function, input_signature)}` with every shape fixed, for
    LiteRT: for each batch size B, `decode_<B>` (z `[B, latent_dim]` → B
    images), `sample_<B>` and `sample_<sampler>_<B>` (temperature, a float
    scalar that scales the noise, 1 for the prior itself → B fresh images
    and their codes z).
    A conditional model's signatures also take labels `[B]`. Unchecked:
    LiteRT has no assert op (`keras_vae.edge` checks)."""
    endpoints = _Endpoints(vae, checked=False)
    functions = {}
    temperature = tf.TensorSpec([], tf.float32, name="temperature")
    for size in check_batch_sizes(batch_sizes):
        z_spec = tf.TensorSpec([size, vae.latent_dim], tf.float32, name="z")
        labels = [tf.TensorSpec([size], tf.int32, name="labels")] if vae.num_classes else []
        functions[f"decode_{size}"] = (endpoints.decode, [z_spec, *labels])
        if vae.detector is not None:
            x_spec = tf.TensorSpec((size,) + tuple(vae.data_shape), tf.float32, name="x")
            functions[f"score_{size}"] = (endpoints.score, [x_spec, *labels])
        for name in [None, *vae.samplers]:
            key = "_".join(filter(None, ("sample", name, str(size))))
            functions[key] = (
                lambda t, labels=None, s=name, b=size: endpoints.sample_fixed(b, t, labels, s),
                [temperature, *labels])
    return functions


def check_batch_sizes(batch_sizes):
    """The batch sizes, sorted, or a ValueError naming what is wrong."""
    sizes = sorted(set(batch_sizes)) if isinstance(batch_sizes, (list, tuple)) else None
    if not sizes or any(isinstance(b, bool) or not isinstance(b, int)
                        or not 1 <= b <= MAX_SAMPLES for b in sizes):
        raise ValueError(f"Expected batch sizes: a list of integers in [1, {MAX_SAMPLES}], "
                         f"such as [1, 16, 64]. Received: {batch_sizes!r}")
    return sizes


def sampler_signatures(vae, seeded=True):
    """The extra `sample_<name>` (and `sample_seeded_<name>`) signatures of
    the model's fitted samplers, and `score` where the model has a detector."""
    names = [f"sample_{name}" for name in vae.samplers]
    names += [f"sample_seeded_{name}" for name in vae.samplers] if seeded else []
    return names + (["score"] if seeded and vae.detector is not None else [])


def _label_checks(labels, num_classes, checked):
    if labels is None:
        return []
    return _checked(
        tf.logical_and(tf.reduce_all(labels >= 0), tf.reduce_all(labels < num_classes)),
        f"labels must be integers in [0, {num_classes}).", checked)


def write_archive(vae, path, names, checked=True, dataset=None, functions=None):
    """Write a SavedModel at `path` with the named serving functions (of
    `serving_functions`, unless `functions` are given).

    The first name is also `serving_default`.
    """
    functions = functions or serving_functions(vae, checked=checked, dataset=dataset)
    archive = keras.export.ExportArchive()
    archive.track(vae)
    for name in names:
        function, signature = functions[name]
        archive.add_endpoint(name, function, input_signature=signature)
    archive.write_out(path, verbose=False)
