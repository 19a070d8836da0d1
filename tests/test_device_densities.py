"""The mixture densities as LiteRT runs them (`device_densities`) against
TFP's, in float64."""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae.distributions import device_densities

tfd = tfp.distributions


def test_the_diagonal_mixture_is_tfps():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(2, 7, 3)) * 2  # any leading shape
    locs, scales, logits = rng.normal(size=(4, 3)), rng.uniform(0.05, 2, (4, 3)), rng.normal(
        size=4)
    expected = tfd.MixtureSameFamily(
        tfd.Categorical(logits=logits),
        tfd.Independent(tfd.Normal(locs, scales), 1)).log_prob(z).numpy()
    got = device_densities.diagonal_mixture(*(tf.constant(a, tf.float32)
                                              for a in (z, locs, scales, logits)))
    assert got.shape == (2, 7)
    np.testing.assert_allclose(got, expected, rtol=2e-5)


def test_the_full_covariance_mixture_solves_without_a_triangular_solve():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(2, 5, 4))  # any leading shape
    locs, logits = rng.normal(size=(3, 4)), rng.normal(size=3)
    trils = np.tril(rng.normal(size=(3, 4, 4)) * 0.3)
    trils[:, range(4), range(4)] = rng.uniform(0.2, 1.5, (3, 4))
    expected = tfd.MixtureSameFamily(
        tfd.Categorical(logits=logits), tfd.MultivariateNormalTriL(locs, trils)).log_prob(
        z).numpy()
    got = device_densities.full_covariance_mixture(
        *(tf.constant(a, tf.float32) for a in (z, locs, trils, logits)))
    assert got.shape == (2, 5)
    np.testing.assert_allclose(got, expected, rtol=2e-5)


def test_the_device_graph_switch_is_scoped():
    assert device_densities.active() is False
    with device_densities.device_graph():
        assert device_densities.active()
        with device_densities.device_graph():
            assert device_densities.active()
        assert device_densities.active()
    assert not device_densities.active()
