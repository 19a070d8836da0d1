"""Activations that a training step computes as one XLA kernel each way.

SiLU, x·σ(x), is a few elementwise operations forward and several more
backward in TensorFlow's graph (`tf.nn.silu`'s gradient computes σ(x)
again); each reads and writes the whole activation tensor. Inside a
training step (`keras_vae.distributions.fused.training_step()`, which
`VAE.train_step` opens) `silu` computes its values in one XLA kernel and its
gradient in another, as `fused.per_example` does for the likelihood: the
convolutions around them stay oneDNN's. Elsewhere (eager calls,
predictions, SavedModel and LiteRT exports, which must hold no XLA cluster)
it is `tf.nn.silu`. Both give the same values to float rounding
(tests/test_activations.py); benchmarks/resnet_benchmark.py times them.

`get(identifier)` is `keras.activations.get` with "silu" (and its other
name, "swish") mapped to this `silu`; the named networks use it.
"""

import keras
import tensorflow as tf

from keras_vae.distributions import fused


@keras.saving.register_keras_serializable(package="keras_vae")
def silu(x):
    """x·σ(x); one XLA kernel forward and one backward in a training step."""
    if tf.executing_eagerly() or not fused.active():
        return tf.nn.silu(x)
    return _fused_silu(x)


@tf.function(jit_compile=True, autograph=False)
def _silu_values(x):
    return x * tf.sigmoid(x)


@tf.function(jit_compile=True, autograph=False)
def _silu_gradient(x, upstream):
    sigmoid = tf.sigmoid(x)
    return upstream * sigmoid * (1.0 + x * (1.0 - sigmoid))


@tf.custom_gradient
def _fused_silu(x):
    def backward(upstream):
        return _silu_gradient(x, upstream)

    return _silu_values(x), backward


def get(identifier):
    """The activation function `identifier` names (`keras.activations.get`),
    with "silu" and "swish" as this module's `silu`."""
    if isinstance(identifier, str) and identifier in ("silu", "swish"):
        return silu
    return keras.activations.get(identifier)
