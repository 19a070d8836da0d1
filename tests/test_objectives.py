"""The objectives (keras_vae.objectives) against NumPy on the same draws."""

import math

import numpy as np
import pytest

import keras_vae
from keras_vae import objectives

RNG = np.random.default_rng(7)


def logsumexp(a, axis):
    """log Σ exp(a) along `axis`, in float64, the stable NumPy way."""
    a = np.asarray(a, "float64")
    top = a.max(axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.exp(a - top).sum(axis=axis))
K, BATCH, LATENT = 5, 4, 3


def _terms():
    return (RNG.normal(-80, 5, (K, BATCH)).astype("float32"),   # log p(x|z)
            RNG.normal(-4, 1, (K, BATCH)).astype("float32"),    # log p(z)
            RNG.normal(-2, 1, (K, BATCH)).astype("float32"))    # log q(z|x)


def test_negative_elbo_is_the_weighted_batch_mean():
    reconstruction = RNG.normal(90, 3, BATCH).astype("float32")
    kl = RNG.gamma(2.0, 3.0, BATCH).astype("float32")
    for weight in (1.0, 0.3):
        expected = reconstruction.mean() + weight * kl.mean()
        got = float(objectives.negative_elbo(reconstruction, kl, weight))
        assert got == pytest.approx(expected, rel=1e-6)
    # The default weight is 1: the negative ELBO itself.
    assert float(objectives.negative_elbo(reconstruction, kl)) == pytest.approx(
        reconstruction.mean() + kl.mean(), rel=1e-6)


@pytest.mark.parametrize("weight", [1.0, 0.5])
def test_log_importance_weights(weight):
    log_px, log_prior, log_q = _terms()
    got = np.asarray(objectives.log_importance_weights(log_px, log_prior, log_q, weight))
    np.testing.assert_allclose(got, log_px + weight * (log_prior - log_q), rtol=1e-6)
    # The default weight is 1: p(x|z) p(z) / q(z|x), as evaluation uses it.
    np.testing.assert_allclose(
        np.asarray(objectives.log_importance_weights(log_px, log_prior, log_q)),
        log_px + log_prior - log_q, rtol=1e-6)


def test_importance_weighted_bound_is_the_log_mean_of_the_weights():
    log_px, log_prior, log_q = _terms()
    log_w = (log_px + log_prior - log_q).astype("float64")
    expected = logsumexp(log_w, axis=0) - math.log(K)
    got = np.asarray(objectives.importance_weighted_bound(log_w.astype("float32")))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # With one sample the bound is the single weight: the Monte-Carlo ELBO.
    np.testing.assert_allclose(
        np.asarray(objectives.importance_weighted_bound(log_w[:1].astype("float32"))),
        log_w[0], rtol=1e-6)


def test_free_bits_floors_each_dimension_of_the_mean():
    share = np.array([0.05, 0.4, 1.5], "float32")
    mean = np.array([0.05, 0.4, 1.5], "float32")
    floor = 0.5
    expected = np.maximum(floor, mean).sum()
    assert float(objectives.free_bits_kl(share, mean, floor)) == pytest.approx(expected)
    # The share is kept only where the mean is strictly above the floor (at
    # the floor itself the dimension gets the floor and no gradient).
    other_share = np.array([9.0, 9.0, 2.0], "float32")
    assert float(objectives.free_bits_kl(other_share, mean, floor)) == pytest.approx(
        floor + floor + 2.0)
    assert float(objectives.free_bits_kl(other_share, np.float32([0.5, 0.5, 0.6]),
                                         floor)) == pytest.approx(floor + floor + 2.0)


def _model(**kwargs):
    return keras_vae.VAE((4, 4, 1), latent_dim=LATENT, hidden_units=(8,), seed=1, **kwargs)


@pytest.mark.parametrize("weight, prior", [(1.0, "standard_normal"),
                                           (0.25, "mixture_of_gaussians")])
def test_the_models_loss_is_the_objective_of_its_terms(weight, prior):
    x = (RNG.random((BATCH, 4, 4, 1)) > 0.5).astype("float32")
    elbo = _model(kl_weight=weight, prior=prior)
    iwae = _model(kl_weight=weight, objective="iwae", num_samples=K, prior=prior)
    terms = elbo.elbo_terms(x)
    expected = (np.asarray(terms.reconstruction).mean()
                + weight * np.asarray(terms.kl).mean())
    assert float(elbo._objective.loss(elbo, terms)) == pytest.approx(expected, rel=1e-5)

    terms = iwae.elbo_terms(x)
    z = terms.z
    log_w = (np.asarray(terms.log_px, "float64")
             + weight * (np.asarray(iwae.prior.log_prob(z), "float64")
                         - np.asarray(terms.posterior.log_prob(z), "float64")))
    expected = -np.mean(logsumexp(log_w, axis=0) - math.log(K))
    assert float(iwae._objective.loss(iwae, terms)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("free_bits", [0.05, 0.5, 2.0])
def test_free_bits_in_the_model_floor_the_batch_mean_per_dimension(free_bits):
    x = (RNG.random((BATCH, 4, 4, 1)) > 0.5).astype("float32")
    vae = _model(free_bits=free_bits)
    terms = vae.elbo_terms(x)
    per_dimension = np.asarray(vae.kl_per_dimension(x)).mean(axis=0)
    expected = (np.asarray(terms.reconstruction).mean()
                + np.maximum(free_bits, per_dimension).sum())
    assert float(vae._objective.loss(vae, terms)) == pytest.approx(expected, rel=1e-5)
    if free_bits >= 0.5:  # the floor is active: not the plain negative ELBO
        assert expected > np.asarray(terms.reconstruction).mean() + per_dimension.sum() + 0.1


def test_objectives_are_found_by_name_and_refused_otherwise():
    assert isinstance(objectives.get("iwae"), objectives.Iwae)
    with pytest.raises(ValueError, match=r"Unknown objective: 'vimco'. Expected one of \['elbo', 'iwae'\]"):
        keras_vae.VAE((4, 4, 1), objective="vimco")
