"""keras_vae.distributions.fused: in a training step's graph the logistic
mixture's log-probability and its gradient are one XLA kernel. Its values
against the float64 reference, its gradients against the plain operations'
(eager), the cases that fall back to the plain operations, and no XLA in
any other graph (evaluation, exports)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_logistic_mixture import random_case, reference_log_prob

import keras_vae
from keras_vae.distributions import fused
from keras_vae.distributions.logistic_mixture import DiscretizedLogisticMixture
from keras_vae.distributions.neighbour_mixture import AutoregressiveLogisticMixture


def xla_functions(graph_def):
    """Names of the functions in `graph_def`'s library that XLA must compile."""
    return [f.signature.name for f in graph_def.library.function
            if f.attr["_XlaMustCompile"].b]


def values_and_gradient(likelihood, params, x, weights, graph, event_ndims=1, signature=None):
    """log p(x) per example and the gradient of Σ weights · log p with
    respect to the decoder outputs `params`, eagerly or in a tf.function
    (returned as the third item, for its graph)."""
    def run(params, x):
        with tf.GradientTape() as tape:
            tape.watch(params)
            values = likelihood.distribution(params, event_ndims).log_prob(x)
            loss = tf.reduce_sum(weights * values)
        return values, tape.gradient(loss, params)

    if not graph:
        values, gradient = run(tf.constant(params), tf.constant(x))
        return values.numpy(), gradient.numpy(), None
    function = tf.function(run, input_signature=signature)
    with fused.training_step():
        values, gradient = function(tf.constant(params), tf.constant(x))
        concrete = function.get_concrete_function(*(
            signature or (tf.constant(params), tf.constant(x))))
    return values.numpy(), gradient.numpy(), concrete.graph.as_graph_def()


@pytest.mark.parametrize("components,channels,scale_shift", [(1, 1, 0.0), (5, 3, 0.0),
                                                              (2, 3, -30.0), (3, 4, 4.0)])
def test_in_a_graph_one_xla_kernel_gives_the_values_and_gradients(components, channels,
                                                                   scale_shift):
    likelihood = DiscretizedLogisticMixture(components=components)
    params, levels = random_case(components, channels, 60, seed=7 * components + channels,
                                 scale_shift=scale_shift)
    x = (levels / 255.0).astype("float32")
    # Each example's gradient is scaled by its own weight, so a backward pass
    # that ignored the incoming gradient, or mixed examples, would differ.
    weights = np.random.default_rng(0).uniform(-2.0, 3.0, 60).astype("float32")
    values, gradient, graph_def = values_and_gradient(likelihood, params, x, weights, True)
    assert len(xla_functions(graph_def)) == 1
    want = reference_log_prob(params, levels, components)
    finite = np.isfinite(want)
    atol = 2e-3 if scale_shift < 0 else 2e-4
    np.testing.assert_allclose(values[finite], want[finite], rtol=2e-5, atol=atol)
    plain_values, plain_gradient, _ = values_and_gradient(likelihood, params, x, weights, False)
    np.testing.assert_allclose(values, plain_values, rtol=1e-5, atol=atol)
    assert np.abs(plain_gradient).max() > 0.1  # the comparison below is not of zeros
    np.testing.assert_allclose(gradient, plain_gradient, rtol=1e-3,
                               atol=1e-4 * np.abs(plain_gradient).max())


@pytest.mark.parametrize("likelihood", [DiscretizedLogisticMixture(components=2),
                                        AutoregressiveLogisticMixture(2, neighbours=5)])
def test_images_with_a_sample_axis_are_fused_and_their_gradients_match(likelihood):
    """The training step's layout: decoder outputs (samples, batch, H, W, P)
    and images (batch, H, W, C) that broadcast over the samples; for the
    neighbour mixture, its shift is inside the kernel."""
    rng = np.random.default_rng(1)
    params = rng.normal(size=(2, 3, 4, 5, likelihood.output_channels(3))).astype("float32")
    x = (rng.integers(0, 256, (3, 4, 5, 3)) / 255.0).astype("float32")
    weights = rng.uniform(0.5, 2.0, (2, 3)).astype("float32")
    values, gradient, graph_def = values_and_gradient(likelihood, params, x, weights, True, 3)
    assert len(xla_functions(graph_def)) == 1
    plain_values, plain_gradient, _ = values_and_gradient(likelihood, params, x, weights,
                                                          False, 3)
    assert values.shape == (2, 3)
    np.testing.assert_allclose(values, plain_values, rtol=1e-5)
    np.testing.assert_allclose(gradient, plain_gradient, rtol=1e-3,
                               atol=1e-4 * np.abs(plain_gradient).max())


def test_parameters_shared_by_several_examples_use_the_plain_operations():
    """One grey pixel's parameters for 5 data rows: its gradient sums the
    rows' (weighted) gradients, which the fused kernel's per-example product
    cannot give, so the plain operations run."""
    likelihood = DiscretizedLogisticMixture(components=3)
    params, _ = random_case(3, 1, 1, seed=3)
    x = (np.random.default_rng(2).integers(0, 256, (5, 1)) / 255.0).astype("float32")
    weights = np.arange(1.0, 6.0, dtype="float32")
    values, gradient, graph_def = values_and_gradient(likelihood, params, x, weights, True)
    assert xla_functions(graph_def) == []
    plain_values, plain_gradient, _ = values_and_gradient(likelihood, params, x, weights, False)
    np.testing.assert_allclose(values, plain_values, rtol=1e-6)
    np.testing.assert_allclose(gradient, plain_gradient, rtol=1e-5, atol=1e-7)


def test_a_broadcast_hidden_by_unknown_shapes_is_refused_in_the_backward_pass():
    likelihood = DiscretizedLogisticMixture(components=3)
    params, _ = random_case(3, 1, 1, seed=3)
    x = (np.random.default_rng(2).integers(0, 256, (5, 1)) / 255.0).astype("float32")
    signature = [tf.TensorSpec([None, params.shape[1]]), tf.TensorSpec([None, 1])]
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="the data has more examples than the likelihood parameters"):
        values_and_gradient(likelihood, params, x, np.ones(5, "float32"), True,
                            signature=signature)


def test_the_vae_fuses_its_training_step_only():
    """`VAE.train_step` opens `fused.training_step()`; evaluation, a graph
    outside it and the eager form use the plain operations (no XLA cluster:
    TF Serving and LiteRT run none), and all compute the same values."""
    likelihood = DiscretizedLogisticMixture(components=2)
    params, levels = random_case(2, 3, 4, seed=5)
    x = (levels / 255.0).astype("float32")
    log_prob = tf.function(lambda params, x: likelihood.distribution(params, 1).log_prob(x))
    graph_def = log_prob.get_concrete_function(params, x).graph.as_graph_def()
    assert not fused.active()
    assert xla_functions(graph_def) == []
    np.testing.assert_allclose(log_prob(params, x).numpy(),
                               reference_log_prob(params, levels, 2), rtol=1e-5)

    keras.utils.set_random_seed(0)
    vae = keras_vae.VAE((3,), latent_dim=2, likelihood=likelihood)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    vae.fit(x, batch_size=4, verbose=0)
    spec = tf.TensorSpec((None, 3))
    trained = tf.function(vae.train_step).get_concrete_function(spec).graph.as_graph_def()
    assert len(xla_functions(trained)) == 1
    tested = tf.function(vae.test_step).get_concrete_function(spec).graph.as_graph_def()
    assert xla_functions(tested) == []
    assert not fused.active()


@pytest.mark.parametrize("shapes,data_batch,batch_rank,expected", [
    ([(4, 3), (4, 3)], (4,), 1, True),        # one example of parameters per value
    ([(2, 4, 3)], (4,), 2, True),             # samples of z: the data broadcast along them
    ([(5, 3)], (1,), 1, True),                # one image against five examples' parameters
    ([(None, 3)], (None,), 1, True),          # unknown, the same unknown
    ([(4, 3), (5, 3)], (4,), 1, False),       # parameters of different batches
    ([(4,)], (4,), 2, False),                 # fewer batch dimensions than batch_rank
    ([(4, 3)], (2, 4), 1, False),             # the data has more batch dimensions
    ([(None, 3)], (3,), 1, False),            # unknown parameters against 3 images
    ([(4, 3)], (None,), 1, False),            # 4 examples against an unknown number
    ([(1, 3)], (4,), 1, False),               # one example of parameters, four images
])
def test_the_static_check_fuses_only_where_each_value_has_its_own_parameters(
        shapes, data_batch, batch_rank, expected):
    parameters = [tf.TensorSpec(shape) for shape in shapes]
    assert fused._one_value_per_example(parameters, data_batch, batch_rank) is expected
