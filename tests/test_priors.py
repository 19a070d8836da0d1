"""The priors p(z) (keras_vae.distributions.priors) against NumPy: log-densities
(the mixtures at small scales too), samples, the VampPrior as the mixture of
posteriors at its pseudo-inputs, the Monte-Carlo KL, training and reloading."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_vae
from reference import (
    log_normal,
    logsumexp,
    normal_logpdf,
    numpy_prior_log_prob,
    numpy_scale,
)

import keras_vae
from keras_vae import likelihoods, posteriors, priors

RNG = np.random.default_rng(3)


def _built(prior, latent_dim=3):
    prior.build(latent_dim)
    return prior


def test_standard_normal_log_prob_and_samples():
    prior = _built(priors.StandardNormal())
    z = RNG.normal(size=(4, 5, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(prior.log_prob(z)),
                               normal_logpdf(z, 0.0, 1.0).sum(-1), rtol=1e-5)
    draws = np.asarray(prior.sample(20000, seed=np.array([1, 2], "int32")))
    assert draws.shape == (20000, 3)
    np.testing.assert_allclose(draws.mean(0), 0.0, atol=0.03)
    np.testing.assert_allclose(draws.std(0), 1.0, atol=0.03)
    again = np.asarray(prior.sample(5, seed=np.array([1, 2], "int32")))
    np.testing.assert_array_equal(again, draws[:5])
    assert np.asarray(prior.sample(5)).shape == (5, 3)  # unseeded, for export


def test_learnable_gaussian_log_prob_and_samples():
    prior = _built(priors.LearnableGaussian())
    loc, raw = np.array([1.0, -2.0, 0.5], "float32"), np.array([0.3, -1.0, 1.2], "float32")
    prior.loc.assign(loc)
    prior.raw_scale.assign(raw)
    scale = numpy_scale(raw.astype("float64"))
    z = RNG.normal(size=(6, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(prior.log_prob(z)),
                               normal_logpdf(z, loc, scale).sum(-1), rtol=1e-5)
    draws = np.asarray(prior.sample(20000, seed=np.array([4, 5], "int32")))
    np.testing.assert_allclose(draws.mean(0), loc, atol=0.05)
    np.testing.assert_allclose(draws.std(0), scale, rtol=0.03)
    unseeded = np.asarray(prior.sample(20000))
    np.testing.assert_allclose(unseeded.mean(0), loc, atol=0.05)
    np.testing.assert_allclose(unseeded.std(0), scale, rtol=0.03)


def _mixture():
    prior = _built(priors.MixtureOfGaussians(num_components=2))
    locs = np.array([[-4.0, 0.0, 2.0], [4.0, 1.0, -2.0]], "float32")
    raws = np.array([[0.0, -1.0, 0.5], [-0.5, 0.2, 0.0]], "float32")
    logits = np.array([0.0, math.log(3.0)], "float32")  # weights 1/4, 3/4
    prior.locs.assign(locs)
    prior.raw_scales.assign(raws)
    prior.logits.assign(logits)
    return prior, locs, numpy_scale(raws.astype("float64")), logits


def test_mixture_of_gaussians_log_prob_against_numpy():
    prior, locs, scales, logits = _mixture()
    z = RNG.normal(0, 3, size=(7, 3)).astype("float32")
    log_weights = logits - logsumexp(logits, 0)
    components = normal_logpdf(z[:, None, :], locs, scales).sum(-1) + log_weights
    expected = logsumexp(components, 1)
    np.testing.assert_allclose(np.asarray(prior.log_prob(z)), expected, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(prior.distribution().log_prob(z)), expected,
                               rtol=1e-4)
    assert prior.get_config()["num_components"] == 2


@pytest.mark.parametrize("seed", [None, np.array([6, 7], "int32")])
def test_mixture_samples_pick_components_by_weight(seed):
    prior, locs, scales, _ = _mixture()
    draws = np.asarray(prior.sample(20000, seed=seed))
    right = draws[:, 0] > 0  # the two components are 8 scales apart
    assert right.mean() == pytest.approx(0.75, abs=0.015)
    np.testing.assert_allclose(draws[right].mean(0), locs[1], atol=0.05)
    np.testing.assert_allclose(draws[~right].std(0), scales[0], rtol=0.05)


def test_diagonal_mixture_log_prob_against_numpy():
    locs = RNG.normal(size=(4, 3))
    scales = RNG.uniform(0.2, 2.0, size=(4, 3))
    logits = RNG.normal(size=4)
    z = RNG.normal(size=(2, 5, 3))
    got = np.asarray(priors.diagonal_mixture_log_prob(
        z.astype("float32"), locs.astype("float32"), scales.astype("float32"),
        logits.astype("float32")))
    components = (normal_logpdf(z[..., None, :], locs, scales).sum(-1)
                  + logits - logsumexp(logits, 0))
    np.testing.assert_allclose(got, logsumexp(components, -1), rtol=1e-5)


def test_vamp_prior_is_the_uniform_mixture_of_posteriors_at_pseudo_inputs():
    vae = keras_vae.VAE((4, 4, 1), latent_dim=2, hidden_units=(8,),
                        prior=priors.VampPrior(num_components=3))
    loc, scale = (np.asarray(t, "float64") for t in
                  vae.encode(np.clip(np.asarray(vae.prior.pseudo_inputs), 0, 1)))
    z = RNG.normal(size=(6, 2)).astype("float32")
    components = normal_logpdf(z[:, None, :], loc, scale).sum(-1) - math.log(3)
    np.testing.assert_allclose(np.asarray(vae.prior.log_prob(z)), logsumexp(components, 1),
                               rtol=1e-5)
    # Samples have the moments of the uniform mixture of the three posteriors.
    draws = np.asarray(vae.prior.sample(30000, seed=np.array([1, 1], "int32")), "float64")
    mean = loc.mean(0)
    np.testing.assert_allclose(draws.mean(0), mean, atol=0.03)
    np.testing.assert_allclose(draws.var(0), (scale**2 + loc**2).mean(0) - mean**2, rtol=0.05)


def test_the_base_prior_samples_and_scores_its_distribution():
    class Shifted(priors.Prior):
        def distribution(self):
            import tensorflow_probability as tfp

            normal = tfp.distributions.Normal(loc=np.full(self.latent_dim, 2.0, "float32"),
                                              scale=0.5)
            return tfp.distributions.Independent(normal, reinterpreted_batch_ndims=1)

    prior = _built(Shifted(), 2)
    draws = np.asarray(prior.sample(20000, seed=np.array([3, 3], "int32")))
    np.testing.assert_allclose(draws.mean(0), 2.0, atol=0.02)
    np.testing.assert_allclose(draws.std(0), 0.5, rtol=0.03)
    z = RNG.normal(size=(5, 2)).astype("float32")
    np.testing.assert_allclose(np.asarray(prior.log_prob(z)),
                               normal_logpdf(z, 2.0, 0.5).sum(-1), rtol=1e-5)


def test_vamp_prior_distribution_and_config():
    vae = keras_vae.VAE((4, 4, 1), latent_dim=2, hidden_units=(8,),
                        prior=priors.VampPrior(num_components=3))
    z = RNG.normal(size=(6, 2)).astype("float32")
    np.testing.assert_allclose(np.asarray(vae.prior.distribution().log_prob(z)),
                               np.asarray(vae.prior.log_prob(z)), rtol=1e-4)
    assert vae.prior.get_config()["num_components"] == 3


def test_priors_start_where_their_docstrings_say():
    learnable = _built(priors.LearnableGaussian())
    np.testing.assert_array_equal(np.asarray(learnable.loc), 0.0)
    np.testing.assert_array_equal(np.asarray(learnable.raw_scale), 0.0)  # scale ≈ 1
    mixture = _built(priors.MixtureOfGaussians(num_components=4000), latent_dim=2)
    locs = np.asarray(mixture.locs)
    assert abs(locs.mean()) < 0.05 and locs.std() == pytest.approx(1.0, rel=0.05)
    np.testing.assert_array_equal(np.asarray(mixture.raw_scales), 0.0)
    np.testing.assert_array_equal(np.asarray(mixture.logits), 0.0)  # equal weights
    names = [w.path.split("/")[-1] for w in learnable.weights + mixture.weights]
    assert names == ["loc", "raw_scale", "locs", "raw_scales", "logits"]
    vae = keras_vae.VAE((4, 4, 1), latent_dim=2, hidden_units=(8,),
                        prior=priors.VampPrior(num_components=500))
    pseudo = np.asarray(vae.prior.pseudo_inputs)
    assert pseudo.min() >= 0.0 and pseudo.max() <= 1.0
    assert pseudo.mean() == pytest.approx(0.5, abs=0.02)
    assert vae.prior.weights[0].path.split("/")[-1] == "pseudo_inputs"


def test_seeded_samples_are_the_reparameterized_standard_draws():
    seed = np.array([8, 9], "int32")
    learnable = _built(priors.LearnableGaussian())
    learnable.loc.assign([1.0, 2.0, 3.0])
    learnable.raw_scale.assign([0.5, -0.5, 0.0])
    eps = np.asarray(_built(priors.StandardNormal()).sample(50, seed=seed))
    np.testing.assert_allclose(np.asarray(learnable.sample(50, seed=seed)),
                               [1.0, 2.0, 3.0] + numpy_scale(np.array([0.5, -0.5, 0.0])) * eps,
                               rtol=1e-5)
    mixture, locs, scales, logits = _mixture()
    k, eps = (np.asarray(t) for t in priors.component_draws(50, logits, 3, seed))
    np.testing.assert_allclose(np.asarray(mixture.sample(50, seed=seed)),
                               locs[k] + scales[k] * eps, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(mixture.sample(50, seed=seed)),
                                  np.asarray(mixture.sample(50, seed=seed)))


def test_vamp_pseudo_inputs_are_clipped_on_each_finite_side():

    class Positive(likelihoods.Gaussian):  # a density on [0, inf)
        support = (0.0, math.inf)

    for likelihood, low, high in ((Positive(), 0.0, math.inf),
                                  (likelihoods.Bernoulli(), 0.0, 1.0),
                                  (likelihoods.Gaussian(), -math.inf, math.inf)):
        vae = keras_vae.VAE((4, 4, 1), latent_dim=2, hidden_units=(8,), likelihood=likelihood,
                            prior=priors.VampPrior(num_components=3))
        raw = np.linspace(-3, 3, 48, dtype="float32").reshape(3, 4, 4, 1)
        vae.prior.pseudo_inputs.assign(raw)
        loc, _ = vae.prior._components().distribution.loc, None
        expected, _ = vae.encode(np.clip(raw, low, high))
        np.testing.assert_allclose(np.asarray(loc), np.asarray(expected), rtol=1e-5, atol=1e-6)
        vae.prior.sample(4, seed=np.array([1, 2], "int32"))  # the same seeds, reproducibly
        np.testing.assert_array_equal(
            np.asarray(vae.prior.sample(4, seed=np.array([1, 2], "int32"))),
            np.asarray(vae.prior.sample(4, seed=np.array([1, 2], "int32"))))


def test_vamp_prior_with_full_covariance_posteriors_against_numpy():
    vae = keras_vae.VAE((4, 4, 1), latent_dim=2, hidden_units=(8,), posterior="full_covariance",
                        prior=priors.VampPrior(num_components=3))
    components = vae.prior._components()
    loc = np.asarray(components.loc, "float64")
    covariance = np.asarray(components.covariance(), "float64")
    z = RNG.normal(size=(5, 2))
    log_pdf = []
    for k in range(3):
        diff = z - loc[k]
        solved = np.linalg.solve(covariance[k], diff.T).T
        log_pdf.append(-0.5 * (diff * solved).sum(-1) - 0.5 * np.log(np.linalg.det(
            2 * math.pi * covariance[k])))
    expected = logsumexp(np.stack(log_pdf, 1) - math.log(3), 1)
    np.testing.assert_allclose(np.asarray(vae.prior.log_prob(z.astype("float32"))), expected,
                               rtol=1e-4)


def test_priors_and_posteriors_by_name_and_per_example():
    with pytest.raises(ValueError, match=r"Unknown prior: 'flat'\. Expected one of"):
        priors.get("flat")
    with pytest.raises(ValueError, match=r"Unknown posterior: 'flow'\. Expected one of"):
        posteriors.get("flow")
    family = posteriors.DiagonalGaussian()
    params = RNG.normal(size=(4, 6)).astype("float32")
    q = family.distribution(params)
    z = RNG.normal(size=(4, 3)).astype("float32")
    loc, scale = params[:, :3], numpy_scale(params[:, 3:].astype("float64"))
    np.testing.assert_allclose(np.asarray(q.log_prob(z)),
                               normal_logpdf(z, loc, scale).sum(-1), rtol=1e-5)


def test_the_base_prior_passes_its_seed():
    class Shifted(priors.Prior):
        def distribution(self):
            import tensorflow_probability as tfp

            normal = tfp.distributions.Normal(loc=np.zeros(self.latent_dim, "float32"), scale=1.0)
            return tfp.distributions.Independent(normal, reinterpreted_batch_ndims=1)

    prior = _built(Shifted(), 2)
    first = np.asarray(prior.sample(5, seed=np.array([1, 2], "int32")))
    np.testing.assert_array_equal(first, np.asarray(prior.sample(5, seed=np.array([1, 2], "int32"))))
    assert not np.allclose(first, np.asarray(prior.sample(5, seed=np.array([3, 4], "int32"))))


@pytest.mark.parametrize("prior", [
    priors.StandardNormal(), priors.LearnableGaussian(), priors.MixtureOfGaussians(3),
    priors.VampPrior(3)])
def test_monte_carlo_kl_matches_a_high_sample_numpy_reference(small_data, prior):
    samples = 20000
    # Mixture priors always estimate the KL; the Gaussian ones are told to.
    gaussian = isinstance(prior, (priors.StandardNormal, priors.LearnableGaussian))
    vae = small_vae(prior=prior, num_samples=samples, use_exact_kl=not gaussian,
                    latent_dim=2)
    if isinstance(prior, priors.LearnableGaussian):
        prior.loc.assign([0.5, -0.3])
    vae.compile(optimizer="adam")
    x = small_data[:2]
    kl_model = vae.evaluate(x, verbose=0, return_dict=True)["kl_loss"]
    loc, scale = (np.asarray(t, "float64") for t in vae.encode(x))
    z = loc + scale * np.random.default_rng(0).standard_normal((200_000,) + loc.shape)
    log_ratio = log_normal(z, loc, scale) - numpy_prior_log_prob(prior, z, vae)
    reference = np.mean(log_ratio)
    # The model's estimate averages samples × 2 draws: allow 4 standard errors.
    standard_error = log_ratio.std() / np.sqrt(samples * len(x))
    assert kl_model == pytest.approx(reference, abs=4 * standard_error + 1e-3), (
        kl_model, reference, standard_error)


def test_vamp_prior_is_the_mixture_of_posteriors_at_its_pseudo_inputs(small_data):
    vae = small_vae(prior=priors.VampPrior(num_components=4), latent_dim=2)
    pseudo = np.clip(vae.prior.pseudo_inputs.numpy(), 0, 1)
    loc, scale = (np.asarray(t, "float64") for t in vae.encode(pseudo))
    z = np.random.default_rng(1).standard_normal((50, 2))
    parts = [log_normal(z, loc[k], scale[k]) for k in range(4)]
    want = np.logaddexp.reduce(np.stack(parts), axis=0) - np.log(4)
    got = vae.prior.distribution().log_prob(z.astype("float32"))
    np.testing.assert_allclose(got, want, rtol=1e-4)
    np.testing.assert_allclose(vae.prior.log_prob(z.astype("float32")), want, rtol=1e-4)


@pytest.mark.parametrize("prior", [priors.MixtureOfGaussians(5), priors.VampPrior(6)])
def test_mixture_priors_log_prob_matches_numpy_for_any_batch_shape(prior):
    vae = small_vae(prior=prior, latent_dim=3)
    if isinstance(prior, priors.MixtureOfGaussians):
        prior.raw_scales.assign(np.linspace(-6, 2, 15).reshape(5, 3))  # scales 0.004 to 2
        prior.logits.assign([0.0, 1.0, -1.0, 2.0, 0.5])
    z = np.random.default_rng(2).normal(size=(4, 7, 3))
    want = numpy_prior_log_prob(prior, z, vae)
    got = prior.log_prob(z.astype("float32"))
    assert got.shape == (4, 7)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_diagonal_mixture_log_prob_against_the_direct_form_at_small_scales():
    """The matrix-product expansion against float64 NumPy, with scales down to 0.005."""
    rng = np.random.default_rng(0)
    k, d, n = 200, 20, 2000
    locs = rng.normal(size=(k, d))
    scales = np.where(rng.random((k, d)) < 0.3, rng.uniform(0.005, 0.1, (k, d)),
                      rng.uniform(0.8, 1.0, (k, d)))
    logits = rng.normal(size=k)
    owner = rng.integers(0, k, n)  # codes near one component, as in a VAE
    z = locs[owner] + scales[owner] * rng.normal(size=(n, d))
    log_pi = logits - np.logaddexp.reduce(logits)
    want = np.logaddexp.reduce(
        np.stack([log_pi[j] + log_normal(z, locs[j], scales[j]) for j in range(k)]), axis=0)
    got = priors.diagonal_mixture_log_prob(*(t.astype("float32") for t in (z, locs, scales, logits)))
    error = np.asarray(got, "float64") - want
    assert np.abs(error).max() < 0.1 and abs(error.mean()) < 1e-3, (np.abs(error).max(), error.mean())


@pytest.mark.parametrize("name", ["learnable_gaussian", "mixture_of_gaussians", "vamp"])
def test_each_prior_trains_samples_and_reloads(tmp_path, small_data, name):
    vae = small_vae(prior=name)
    vae.compile(optimizer="adam")
    before = vae.evaluate(small_data, verbose=0, return_dict=True)["loss"]
    vae.fit(small_data, epochs=5, batch_size=16, verbose=0)
    assert vae.evaluate(small_data, verbose=0, return_dict=True)["loss"] < before
    assert vae.sample(5, seed=1).shape == (5, 6, 6, 1)
    assert any(w.trainable for w in vae.prior.weights)
    vae.save(tmp_path / "p.keras")
    again = keras.models.load_model(tmp_path / "p.keras")
    assert type(again.prior) is type(vae.prior)
    np.testing.assert_allclose(again.sample(5, seed=1), vae.sample(5, seed=1), atol=1e-6)


def test_learnable_gaussian_samples_have_its_moments_and_export_to_litert(tmp_path):
    vae = small_vae(prior="learnable_gaussian", latent_dim=2)
    vae.prior.loc.assign([1.0, -2.0])
    vae.prior.raw_scale.assign([1.0, -1.0])
    z = np.asarray(vae.prior.sample(20000, seed=tf.constant([0, 1])))
    scale = np.log1p(np.exp(np.array([1.0, -1.0]) + np.log(np.e - 1))) + 1e-4
    np.testing.assert_allclose(z.mean(0), [1.0, -2.0], atol=0.03)
    np.testing.assert_allclose(z.std(0), scale, rtol=0.03)
    paths = keras_vae.export.export_litert(vae, str(tmp_path), quantize=("none",))
    assert keras_vae.edge.LiteRTGenerator(paths["none"]).sample(3).shape == (3, 6, 6, 1)


@pytest.mark.parametrize("scale", [0.01, 0.002])
def test_mixture_log_prob_is_stable_at_small_scales(scale):
    rng = np.random.default_rng(1)
    k, d, n = 20, 8, 500
    locs = (3.0 * rng.choice([-1, 1], size=(k, d))).astype("float32")
    scales = np.full((k, d), scale, "float32")
    logits = rng.normal(size=k).astype("float32")
    owner = rng.integers(0, k, n)
    z = (locs[owner] + scales[owner] * rng.normal(size=(n, d))).astype("float32")
    # float64 on the very float32 values the function receives.
    z64, locs64, scales64, logits64 = (t.astype("float64") for t in (z, locs, scales, logits))
    log_pi = logits64 - np.logaddexp.reduce(logits64)
    parts = [log_pi[j] + (-0.5 * ((z64 - locs64[j]) / scales64[j]) ** 2
                          - np.log(scales64[j]) - 0.5 * np.log(2 * np.pi)).sum(-1)
             for j in range(k)]
    want = np.logaddexp.reduce(np.stack(parts), axis=0)
    got = np.asarray(priors.diagonal_mixture_log_prob(z, locs, scales, logits), "float64")
    assert np.abs(got - want).max() < 1e-3


@pytest.mark.parametrize("likelihood, clipped", [("gaussian", False), ("bernoulli", True)])
def test_vamp_pseudo_inputs_follow_the_likelihoods_range(likelihood, clipped):
    vae = small_vae(prior=priors.VampPrior(4), likelihood=likelihood)
    pseudo = np.random.default_rng(0).uniform(-3, 4, size=(4, 6, 6, 1)).astype("float32")
    vae.prior.pseudo_inputs.assign(pseudo)
    inputs = np.clip(pseudo, 0, 1) if clipped else pseudo
    want_loc, want_scale = (np.asarray(t) for t in vae.encode(inputs))
    components = vae.prior._components()
    np.testing.assert_allclose(np.asarray(components.distribution.loc), want_loc, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(components.distribution.scale), want_scale,
                               rtol=1e-6)

