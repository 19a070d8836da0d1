"""`distributions.bernoulli_sum.log_prob_sum`, Σ x·l − softplus(l) with one
logarithm per group of values, against NumPy in float64: the value, its gradients,
XLA, event sizes of every kind of divisor, extreme logits."""

import numpy as np
import pytest
import tensorflow as tf

from keras_vae.distributions import bernoulli_sum

RNG = np.random.default_rng(7)


def _log_prob_sum(logits, x, event_ndims):
    """Σ x·l − log(1 + e^l) over the last `event_ndims` axes, in float64."""
    logits = logits.astype(np.float64)
    values = x * logits - np.logaddexp(0.0, logits)
    return values.sum(axis=tuple(range(-event_ndims, 0))) if event_ndims else values


def _logits(shape, scale=8.0):
    logits = (RNG.standard_normal(shape) * scale).astype(np.float32)
    logits.flat[:3] = [0.0, 120.0, -120.0][:logits.size]  # softplus(0) = ln 2; far tails
    return logits


@pytest.mark.parametrize("shape, x_shape, event_ndims, count", [
    ((3, 5, 28, 28, 1), (5, 28, 28, 1), 3, 16),  # the evaluator's (samples, batch) + image
    ((4, 33), (4, 33), 1, 11),
    ((2, 3, 5, 2), (3, 5, 2), 2, 10),
    ((6, 229), (6, 229), 1, 1),  # a prime: one logarithm per value
    ((4, 226), (226,), 1, 2),  # 226 = 2 · 113
    ((3, 34), (3, 34), 1, 2),  # 34 = 2 · 17: 17 is above MAX_FACTORS
    ((2, 3), (2, 3), 0, 1),  # no event axes: each value alone
])
def test_the_sum_matches_numpy(shape, x_shape, event_ndims, count):
    logits = _logits(shape)
    x = np.round(RNG.uniform(size=x_shape)).astype(np.float32)
    x.flat[-1] = 0.37  # a grey level: the binary cross-entropy
    got = bernoulli_sum.log_prob_sum(tf.constant(logits), tf.constant(x), event_ndims).numpy()
    want = _log_prob_sum(logits, x, event_ndims)
    assert bernoulli_sum.factors(int(np.prod(shape[len(shape) - event_ndims:]))) == count
    assert got.shape == want.shape
    # float32 accuracy: the sums are up to a few thousand nats
    np.testing.assert_allclose(got, want, rtol=2e-7, atol=2e-5)


def test_grouping_keeps_the_accuracy_of_the_plain_float32_sum():
    """For logits of every size, the grouped sum lies no farther from the
    float64 value than TensorFlow's own softplus summed in float32."""
    logits = np.concatenate([_logits((64, 784), scale) for scale in (0.1, 1.0, 10.0, 50.0)])
    x = np.round(RNG.uniform(size=logits.shape)).astype(np.float32)
    want = _log_prob_sum(logits, x, 1)
    got = bernoulli_sum.log_prob_sum(tf.constant(logits), tf.constant(x), 1).numpy()
    plain = tf.reduce_sum(x * logits - tf.math.softplus(logits), -1).numpy()
    assert np.abs(got - want).max() <= 2 * np.abs(plain - want).max() + 1e-6


def test_zero_logits_give_size_times_log_two():
    """Every factor is 1 + e⁰ = 2, so each product of 16 is 2¹⁶, exactly."""
    got = bernoulli_sum.log_prob_sum(tf.zeros((2, 784)), tf.zeros((2, 784)), 1).numpy()
    np.testing.assert_allclose(got, -784 * np.log(2.0), rtol=1e-7)


def test_the_gradients_are_those_of_the_formula():
    """d/dl = x − sigmoid(l), d/dx = l, with x broadcast over samples."""
    logits = _logits((3, 4, 37), scale=4.0)
    x = RNG.uniform(size=(4, 37)).astype(np.float32)
    upstream = RNG.standard_normal((3, 4)).astype(np.float32)
    logits_t, x_t = tf.constant(logits), tf.constant(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([logits_t, x_t])
        total = tf.reduce_sum(bernoulli_sum.log_prob_sum(logits_t, x_t, 1) * upstream)
    sigmoid = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    np.testing.assert_allclose(tape.gradient(total, logits_t).numpy(),
                               upstream[..., None] * (x - sigmoid), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(tape.gradient(total, x_t).numpy(),
                               (upstream[..., None] * logits).sum(0), rtol=1e-5, atol=1e-5)


def test_xla_and_an_unknown_event_size_give_the_same_sum():
    logits = _logits((5, 100))
    x = np.round(RNG.uniform(size=(5, 100))).astype(np.float32)
    want = _log_prob_sum(logits, x, 1)
    compiled = tf.function(lambda logits, x: bernoulli_sum.log_prob_sum(logits, x, 1), jit_compile=True)
    unknown = tf.function(lambda logits, x: bernoulli_sum.log_prob_sum(logits, x, 1),
                          input_signature=[tf.TensorSpec((None, None), tf.float32)] * 2)
    for function in (compiled, unknown):
        np.testing.assert_allclose(function(tf.constant(logits), tf.constant(x)).numpy(),
                                   want, rtol=2e-7, atol=2e-5)
