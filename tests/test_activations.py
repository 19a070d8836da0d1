"""keras_vae.models.activations.silu: in a training step, one XLA kernel
forward and one backward; elsewhere tf.nn.silu. Values and gradients
against float64 NumPy, and which graphs hold XLA functions."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_fused import xla_functions

import keras_vae
from keras_vae.distributions import fused
from keras_vae.models import activations


def reference(x, upstream):
    """x·σ(x) and upstream · d/dx[x·σ(x)] in float64."""
    x = x.astype("float64")
    sigmoid = 1.0 / (1.0 + np.exp(-x))
    return x * sigmoid, upstream * (sigmoid + x * sigmoid * (1.0 - sigmoid))


def values_and_gradient(x, upstream, training_step):
    """silu(x) and the gradient of Σ upstream · silu(x), in a tf.function
    traced inside or outside `fused.training_step()` (its graph third)."""
    @tf.function
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            values = activations.silu(x)
            total = tf.reduce_sum(upstream * values)
        return values, tape.gradient(total, x)

    x = tf.constant(x)
    if training_step:
        with fused.training_step():
            concrete = run.get_concrete_function(x)
    else:
        concrete = run.get_concrete_function(x)
    values, gradient = concrete(x)
    return values.numpy(), gradient.numpy(), concrete.graph.as_graph_def()


@pytest.mark.parametrize("training_step", [True, False])
def test_silu_values_and_gradient_against_float64(training_step):
    rng = np.random.default_rng(0)
    # Large magnitudes too: σ saturates, the gradient tends to 1 and to 0.
    x = np.concatenate([rng.normal(0, 3, 500), [-40.0, -8.0, 0.0, 8.0, 40.0]]).astype("float32")
    upstream = rng.uniform(-2, 2, x.shape).astype("float32")
    values, gradient, graph_def = values_and_gradient(x, upstream, training_step)
    # Two XLA functions in a training step (values, gradient), none elsewhere.
    assert len(xla_functions(graph_def)) == (2 if training_step else 0)
    want_values, want_gradient = reference(x, upstream)
    np.testing.assert_allclose(values, want_values, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gradient, want_gradient, rtol=1e-5, atol=1e-6)


def test_silu_in_bfloat16_matches_float32_to_bfloat16_precision():
    x = np.linspace(-6, 6, 97).astype("float32")
    upstream = np.ones_like(x)
    half = tf.constant(x, tf.bfloat16)
    with fused.training_step():
        with tf.GradientTape() as tape:
            tape.watch(half)
            values = tf.function(activations.silu)(half)
        gradient = tape.gradient(values, half)
    want_values, want_gradient = reference(x, upstream)
    assert values.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(values, tf.float32), want_values, rtol=2e-2, atol=2e-2)
    np.testing.assert_allclose(tf.cast(gradient, tf.float32), want_gradient, rtol=2e-2,
                               atol=2e-2)


def test_get_maps_both_names_of_silu_and_passes_the_others_to_keras():
    assert activations.get("silu") is activations.silu
    assert activations.get("swish") is activations.silu
    assert activations.get("relu") is keras.activations.relu
    layer = keras.layers.Activation(activations.silu)  # registered: a layer's config holds it
    assert keras.layers.Activation.from_config(layer.get_config()).activation is \
        activations.silu


def test_the_resnet_fuses_its_activations_in_the_training_step_only():
    keras.utils.set_random_seed(0)
    vae = keras_vae.VAE((8, 8, 3), latent_dim=2, encoder="resnet", decoder="resnet",
                        conv_filters=(4,), activation="silu",
                        likelihood="discretized_logistic")
    vae.compile(optimizer="adam")
    spec = tf.TensorSpec((None, 8, 8, 3))
    trained = tf.function(vae.train_step).get_concrete_function(spec).graph.as_graph_def()
    # Encoder: 2 blocks × 2 + head; decoder: the same; each a forward and a
    # gradient function (XLA compiles each shape's function once).
    assert len(xla_functions(trained)) >= 2
    for step in (vae.test_step, vae.predict_step):
        graph_def = tf.function(step).get_concrete_function(spec).graph.as_graph_def()
        assert xla_functions(graph_def) == []
    x = np.random.default_rng(1).integers(0, 256, (4, 8, 8, 3)).astype("float32") / 255
    vae.fit(x, batch_size=4, verbose=0)
    assert all(np.isfinite(w).all() for w in vae.get_weights())
