"""Each likelihood's log-probability against an independent NumPy formula."""

import math

import keras
import numpy as np
import pytest

from keras_vae import likelihoods

RNG = np.random.default_rng(1)
SHAPE = (3, 4, 4, 2)  # batch of 3 images of 4×4×2


def _log_sigmoid(t):
    return -np.logaddexp(0.0, -t)


@pytest.mark.parametrize("binary", [True, False])
def test_bernoulli_log_prob_is_binary_cross_entropy(binary):
    logits = RNG.normal(size=SHAPE).astype("float32")
    x = RNG.uniform(size=SHAPE).astype("float32")
    if binary:
        x = np.round(x)
    got = likelihoods.Bernoulli().distribution(logits, event_ndims=3).log_prob(x)
    want = (x * _log_sigmoid(logits) + (1 - x) * _log_sigmoid(-logits)).sum((1, 2, 3))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_bernoulli_mean_is_sigmoid_of_logits():
    logits = RNG.normal(size=SHAPE).astype("float32")
    np.testing.assert_allclose(
        likelihoods.Bernoulli().mean(logits), 1 / (1 + np.exp(-logits)), rtol=1e-6
    )


def test_gaussian_fixed_scale_gives_balancing_constant():
    c = 0.3**2
    loc = RNG.normal(size=SHAPE).astype("float32")
    x = RNG.normal(size=SHAPE).astype("float32")
    gaussian = likelihoods.Gaussian(scale=0.3)
    nll = -gaussian.distribution(loc, event_ndims=3).log_prob(x)
    d = math.prod(SHAPE[1:])
    # −log p(x|z) = C ‖x − μ‖² + (D/2) log(2πc), with C = 1/(2c).
    want = ((x - loc) ** 2).sum((1, 2, 3)) / (2 * c) + 0.5 * d * np.log(2 * np.pi * c)
    np.testing.assert_allclose(nll, want, rtol=1e-5)
    assert gaussian.balancing_constant == pytest.approx(1 / (2 * c))


def test_gaussian_learned_scale_splits_loc_and_softplus_scale():
    params = RNG.normal(size=SHAPE[:-1] + (2 * SHAPE[-1],)).astype("float32")
    x = RNG.normal(size=SHAPE).astype("float32")
    lik = likelihoods.GaussianLearnedScale(min_scale=0.01)
    got = lik.distribution(params, event_ndims=3).log_prob(x)
    loc, raw = params[..., :2], params[..., 2:]
    scale = 0.01 + np.log1p(np.exp(raw + np.log(np.e - 1)))
    want = (
        -0.5 * ((x - loc) / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi)
    ).sum((1, 2, 3))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert lik.params_size == 2
    # A zero pre-activation gives a scale near 1, as the docs promise.
    zero = np.zeros((1, 1, 1, 2), "float32")
    np.testing.assert_allclose(
        lik.distribution(zero, 1).distribution.stddev(), np.full((1, 1, 1, 1), 1.01), rtol=1e-5
    )


def test_get_resolves_names_instances_and_configs():
    assert isinstance(likelihoods.get("bernoulli"), likelihoods.Bernoulli)
    gaussian = likelihoods.Gaussian(scale=0.5)
    assert likelihoods.get(gaussian) is gaussian


    restored = likelihoods.get(keras.saving.serialize_keras_object(gaussian))
    assert isinstance(restored, likelihoods.Gaussian) and restored.scale == 0.5


def test_unknown_likelihood_lists_valid_names():
    with pytest.raises(ValueError, match="bernoulli.*gaussian.*gaussian_learned_scale"):
        likelihoods.get("poisson")


@pytest.mark.parametrize("bad", [0, -1.0, "big"])
def test_gaussian_scale_must_be_positive(bad):
    with pytest.raises(ValueError, match="positive number.*scale"):
        likelihoods.Gaussian(scale=bad)
