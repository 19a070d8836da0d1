"""The posteriors q(z|x) (keras_vae.distributions.posteriors): the diagonal
and full-covariance Gaussians against NumPy and their closed-form KL."""


import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_vae
from reference import gaussian_kl, numpy_scale

from keras_vae import objectives, posteriors, priors

RNG = np.random.default_rng(3)



def _built(prior, latent_dim=3):
    prior.build(latent_dim)
    return prior

def test_diagonal_posterior_splits_loc_and_scale_and_reparameterizes():
    family = posteriors.DiagonalGaussian()
    assert family.params_size(3) == 6
    params = RNG.normal(size=(4, 6)).astype("float32")
    q = family.distribution(params)
    loc, scale = (np.asarray(t) for t in family.loc_and_scale(q))
    np.testing.assert_allclose(loc, params[:, :3], rtol=1e-6)
    np.testing.assert_allclose(scale, numpy_scale(params[:, 3:].astype("float64")), rtol=1e-5)
    eps = RNG.normal(size=(2, 4, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(family.reparameterize(q, eps)), loc + scale * eps,
                               rtol=1e-5)
    prior = _built(priors.StandardNormal()).distribution()
    kl = gaussian_kl(loc, scale)
    np.testing.assert_allclose(np.asarray(family.kl_divergence(q, prior)), kl, rtol=1e-5)


def _fill_triangular(raw):
    import tensorflow_probability as tfp

    return tfp.math.fill_triangular(raw)


def test_full_covariance_posterior_against_numpy():
    family = posteriors.FullCovarianceGaussian()
    d = 3
    assert family.params_size(d) == 9
    params = RNG.normal(size=(2, 9)).astype("float32")
    q = family.distribution(params)
    tril = np.asarray(q.scale_tril, "float64")
    assert np.all(np.triu(tril, 1) == 0)  # lower-triangular
    np.testing.assert_allclose(np.diagonal(tril, axis1=1, axis2=2),
                               numpy_scale(np.diagonal(
                                   np.asarray(_fill_triangular(params[:, d:])), axis1=1,
                                   axis2=2)), rtol=1e-5)
    loc = params[:, :d]
    eps = RNG.normal(size=(2, d)).astype("float32")
    np.testing.assert_allclose(np.asarray(family.reparameterize(q, eps)),
                               loc + np.einsum("bij,bj->bi", tril, eps), rtol=1e-5)
    covariance = tril @ np.transpose(tril, (0, 2, 1))
    _, stddev = family.loc_and_scale(q)
    np.testing.assert_allclose(np.asarray(stddev),
                               np.sqrt(np.diagonal(covariance, axis1=1, axis2=2)), rtol=1e-5)
    # KL(N(μ, Σ) ‖ N(m, diag s²)) in closed form, to a learnable Gaussian prior.
    prior = _built(priors.LearnableGaussian())
    prior.loc.assign([0.5, -0.5, 0.0])
    prior.raw_scale.assign([0.3, -0.3, 0.0])
    m = np.array([0.5, -0.5, 0.0])
    s2 = numpy_scale(np.array([0.3, -0.3, 0.0])) ** 2
    kl = 0.5 * (np.trace(covariance / s2[:, None], axis1=1, axis2=2)
                + (((m - loc) ** 2) / s2).sum(-1) - d + np.log(s2).sum()
                - np.log(np.linalg.det(covariance)))
    np.testing.assert_allclose(np.asarray(family.kl_divergence(q, prior.distribution())), kl,
                               rtol=1e-4)


def test_full_covariance_sizes_for_every_latent_size():
    family = posteriors.FullCovarianceGaussian()
    for d in range(1, 201):
        size = family.params_size(d)
        assert isinstance(size, int) and size == d + d * (d + 1) // 2
        assert posteriors._latent_dim(size) == d


def test_full_covariance_posterior(tmp_path, small_data):
    vae = small_vae(posterior="full_covariance", latent_dim=3, num_samples=4000)
    assert vae.encoder.output_shape == (None, 3 + 6)
    x = small_data[:2]
    posterior = vae.posterior(x)
    mu, tril = posterior.loc.numpy().astype("float64"), posterior.scale_tril.numpy()
    assert np.all(np.triu(tril[0], 1) == 0) and np.all(np.diagonal(tril, axis1=1, axis2=2) > 0)
    # Reparameterized draws have mean μ and covariance L Lᵀ.
    z = np.asarray(vae.posterior_family.reparameterize(
        posterior, tf.random.normal((20000, 2, 3), seed=1)))[:, 0]
    np.testing.assert_allclose(z.mean(0), mu[0], atol=0.05)
    np.testing.assert_allclose(np.cov(z.T), tril[0] @ tril[0].T, atol=0.06)
    # Monte-Carlo KL against the closed form ½(tr Σ + μᵀμ − d − ln det Σ).
    sigma = tril @ np.transpose(tril, (0, 2, 1))
    want = 0.5 * (np.trace(sigma, axis1=1, axis2=2) + (mu**2).sum(1) - 3
                  - np.linalg.slogdet(sigma)[1])
    vae.compile(optimizer="adam")
    kl = vae.evaluate(x, verbose=0, return_dict=True)["kl_loss"]
    assert kl == pytest.approx(want.mean(), abs=0.1)
    loc, scale = vae.encode(x)
    np.testing.assert_allclose(scale, np.sqrt(np.diagonal(sigma, axis1=1, axis2=2)), rtol=1e-4)
    vae.fit(small_data, epochs=1, batch_size=16, verbose=0)
    vae.save(tmp_path / "full.keras")
    again = keras.models.load_model(tmp_path / "full.keras")
    assert type(again.posterior_family).__name__ == "FullCovarianceGaussian"
    np.testing.assert_allclose(again.encode(x)[1], vae.encode(x)[1], rtol=1e-6)


def test_unknown_posterior_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown posterior: 'flow'. Expected one of \['diagonal', 'full_covariance', 'iaf'\]"):
        small_vae(posterior="flow")


def test_full_covariance_exact_kl_against_the_closed_form(small_data):
    vae = small_vae(posterior="full_covariance", latent_dim=3)
    terms = vae.elbo_terms(small_data[:8])
    posterior = terms.posterior
    mu = np.asarray(posterior.loc, "float64")
    tril = np.asarray(posterior.scale_tril, "float64")
    cov = tril @ np.swapaxes(tril, -1, -2)
    d = 3
    want = 0.5 * (np.trace(cov, axis1=-2, axis2=-1) + (mu**2).sum(-1) - d
                  - np.log(np.linalg.det(cov)))
    np.testing.assert_allclose(np.asarray(terms.kl), want, rtol=1e-4, atol=1e-5)
    # use_exact_kl=False estimates it instead: a different number.
    estimate = small_vae(posterior="full_covariance", latent_dim=3,
                         use_exact_kl=False).elbo_terms(small_data[:8]).kl
    assert np.abs(np.asarray(estimate) - want).max() > 1e-3
    keras.backend.clear_session()


def test_free_bits_with_the_full_covariance_posterior_blames_the_posterior():
    with pytest.raises(ValueError, match=r"objective=Elbo\(free_bits > 0\) cannot be "
                       r"combined with posterior='full_covariance'.*posterior='diagonal'"):
        small_vae(objective=objectives.Elbo(free_bits=1.0), posterior="full_covariance")

