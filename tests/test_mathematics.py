"""The distributions and evaluation maths against NumPy, on small fixed draws.

Fast value tests, each against an independent formula written here; they are
what `make mutation` runs over keras_vae/distributions, the objectives and
keras_vae/evaluation.
"""

import math

import numpy as np
import pytest

import keras_vae
from keras_vae import evaluation, posteriors, priors
from keras_vae.distributions import scale as scale_lib

RNG = np.random.default_rng(3)


def softplus(x):
    return np.logaddexp(0.0, x)


def normal_logpdf(z, loc, scale):
    return -0.5 * ((z - loc) / scale) ** 2 - np.log(scale) - 0.5 * math.log(2 * math.pi)


def logsumexp(a, axis):
    top = a.max(axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.exp(a - top).sum(axis=axis))


def numpy_scale(raw, floor=1e-4):
    return floor + softplus(raw + math.log(math.e - 1.0))


# === Scale ===
def test_positive_scale_is_floor_plus_shifted_softplus():
    raw = np.array([-30.0, -2.0, 0.0, 0.7, 40.0], "float32")
    got = np.asarray(scale_lib.positive_scale(raw))
    np.testing.assert_allclose(got, numpy_scale(raw.astype("float64")), rtol=1e-6)
    assert got[2] == pytest.approx(1.0 + 1e-4, rel=1e-6)  # about 1 at raw = 0
    assert got[0] >= 1e-4  # never below the floor
    np.testing.assert_allclose(np.asarray(scale_lib.positive_scale(raw, floor=0.5)),
                               numpy_scale(raw.astype("float64"), 0.5), rtol=1e-6)


# === Priors ===
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


# === Posteriors ===
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
    kl = 0.5 * (scale**2 + loc**2 - 1 - np.log(scale**2)).sum(-1)
    np.testing.assert_allclose(np.asarray(family.kl_divergence(q, prior)), kl, rtol=1e-5)


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


def _fill_triangular(raw):
    import tensorflow_probability as tfp

    return tfp.math.fill_triangular(raw)


# === Evaluation ===
@pytest.fixture(scope="module")
def model_and_data():
    import keras

    keras.utils.set_random_seed(1)
    x = (RNG.random((40, 4, 4, 1)) > 0.5).astype("float32")
    vae = keras_vae.VAE((4, 4, 1), latent_dim=3, hidden_units=(8,), seed=2)
    return vae, x


def test_bits_per_dimension_by_convention():
    nll = np.array([100.0, 80.0])
    np.testing.assert_allclose(evaluation.bits_per_dimension(nll, 784),
                               nll / (784 * math.log(2)))
    np.testing.assert_allclose(evaluation.bits_per_dimension(nll, 784, "8bit_density"),
                               (nll + 784 * math.log(256)) / (784 * math.log(2)))


def test_per_example_negative_elbo_is_reconstruction_plus_kl(model_and_data):
    vae, x = model_and_data
    scores = evaluation.negative_elbo(vae, x, batch_size=16)
    terms = vae.elbo_terms(x)  # the same noise is not reused, so compare the KL part
    loc, scale = (np.asarray(t, "float64") for t in vae.encode(x))
    kl = 0.5 * (scale**2 + loc**2 - 1 - np.log(scale**2)).sum(-1)
    assert scores.shape == (40,)
    assert np.all(scores > kl)  # reconstruction > 0 for binary data
    np.testing.assert_allclose(np.asarray(terms.kl), kl, rtol=1e-4)
    # The ELBO anomaly score is the same statistic, with another draw of z.
    assert evaluation.anomaly_scores(vae, x).mean() == pytest.approx(scores.mean(), rel=0.05)
    with pytest.raises(ValueError, match="Unknown anomaly score: 'psnr'"):
        evaluation.anomaly_scores(vae, x, method="psnr")


def test_active_units_and_kl_per_dimension_against_numpy(model_and_data):
    vae, x = model_and_data
    loc, scale = (np.asarray(t, "float64") for t in vae.encode(x))
    count, variances = evaluation.active_units(vae, x, threshold=0.0)
    np.testing.assert_allclose(variances, loc.var(axis=0), rtol=1e-4)
    assert count == int(np.sum(loc.var(axis=0) > 0.0))
    middle = float(np.median(variances))
    assert evaluation.active_units(vae, x, threshold=middle)[0] == int(
        np.sum(variances > middle))
    np.testing.assert_allclose(evaluation.posterior_means(vae, x, batch_size=7), loc,
                               rtol=1e-5)
    kl = 0.5 * (scale**2 + loc**2 - 1 - np.log(scale**2))
    np.testing.assert_allclose(evaluation.kl_per_dimension(vae, x, batch_size=7),
                               kl.mean(axis=0), rtol=1e-4)


def test_log_likelihood_is_the_log_mean_of_importance_weights(model_and_data):
    vae, x = model_and_data
    k = 6
    estimate = evaluation.log_likelihood(vae, x[:5], num_samples=k, batch_size=2,
                                         chunk_size=4, seed=3, verbose=False)
    # The same estimator by hand, for comparison in distribution: with k = 1
    # it is the ELBO's Monte-Carlo form, and it rises towards log p(x) with k.
    assert estimate.shape == (5,)
    elbo = -evaluation.negative_elbo(vae, x[:5])
    big = evaluation.log_likelihood(vae, x[:5], num_samples=400, verbose=False)
    assert np.all(big > elbo - 0.5)
    assert np.all(np.abs(estimate - big) < 3.0)
    again = evaluation.log_likelihood(vae, x[:5], num_samples=k, batch_size=2, chunk_size=4,
                                      seed=3, verbose=False)
    np.testing.assert_array_equal(estimate, again)  # the seed fixes the samples
    with pytest.raises(ValueError, match="positive integer num_samples"):
        evaluation.log_likelihood(vae, x, num_samples=0)


def test_anomaly_threshold_and_auroc_against_direct_counts():
    normal = RNG.normal(0, 1, 300)
    anomalous = RNG.normal(1.5, 1, 200)
    assert evaluation.anomaly_threshold(normal, 0.9) == pytest.approx(np.quantile(normal, 0.9))
    pairs = (anomalous[:, None] > normal[None]).mean() + 0.5 * (
        anomalous[:, None] == normal[None]).mean()
    assert evaluation.auroc(normal, anomalous) == pytest.approx(pairs)
    ties = np.array([1.0, 2.0, 2.0, 3.0])
    assert evaluation.auroc(ties, np.array([2.0])) == pytest.approx(0.25 + 0.5 * 0.5)
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match="quantile in"):
            evaluation.anomaly_threshold(normal, bad)


# === Likelihoods: means, configs, messages ===
def test_discretized_logistic_means_read_the_loc_back():
    from keras_vae import likelihoods

    likelihood = likelihoods.DiscretizedLogistic(min_scale=0.5)
    loc = np.array([[-0.2, 0.0, 0.3], [0.7, 1.0, 1.4]], "float32")[..., None]
    params = np.concatenate([loc, np.zeros_like(loc)], axis=-1)
    np.testing.assert_allclose(np.asarray(likelihood.mean(params)), np.clip(loc, 0, 1),
                               atol=1e-6)
    distribution = likelihood.distribution(params, 2)
    np.testing.assert_allclose(np.asarray(likelihood.distribution_mean(distribution)),
                               np.clip(loc, 0, 1), atol=1e-6)
    assert likelihood.get_config() == {"min_scale": 0.5}
    assert likelihoods.GaussianLearnedScale(0.25).get_config() == {"min_scale": 0.25}
    assert repr(likelihoods.Gaussian(0.2)) == "Gaussian(scale=0.2)"
    assert repr(likelihoods.Bernoulli()) == "Bernoulli()"


def test_range_errors_name_the_interval_and_the_fix():
    from keras_vae import likelihoods

    message = likelihoods.Bernoulli().range_error("x with maximum 255")
    assert message == ("The Bernoulli likelihood needs data in [0, 1]. Received x with "
                       "maximum 255. Rescale the data (for 8-bit images, divide by 255) "
                       "or use likelihood='gaussian'.")
    assert likelihoods.Gaussian().range_error("x").startswith(
        "The Gaussian likelihood needs data in [-inf, inf]. Received x.")


@pytest.mark.parametrize("name, binarized, convention", [
    ("bernoulli", True, "discrete"), ("bernoulli", False, None),
    ("discretized_logistic", False, "discrete"), ("discretized_logistic", True, "discrete"),
    ("gaussian", False, "8bit_density"), ("gaussian", True, None),
    ("continuous_bernoulli", False, "8bit_density"),
    ("gaussian_learned_scale", True, None),
])
def test_bits_convention_of_each_likelihood_and_why_not(name, binarized, convention):
    from keras_vae import likelihoods

    likelihood = likelihoods.get(name)
    got, reason = evaluation.bits_convention(likelihood, binarized)
    assert got == convention
    if convention:
        assert reason is None
    elif name == "bernoulli":
        assert reason == ("the Bernoulli log-probability of grey levels is a cross-entropy, "
                          "not a log-likelihood; binarize the data for bits per dimension")
    else:
        assert reason == (f"the {type(likelihood).__name__} likelihood is a density, and a "
                          "density on binary data has no bits-per-dimension meaning")


# === Priors: the base class and the VampPrior's distribution ===
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


# === Initial values, names and seeded draws of the priors ===
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
    from keras_vae import likelihoods

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


def test_full_covariance_sizes_for_every_latent_size():
    family = posteriors.FullCovarianceGaussian()
    for d in range(1, 201):
        size = family.params_size(d)
        assert isinstance(size, int) and size == d + d * (d + 1) // 2
        assert posteriors._latent_dim(size) == d


def test_likelihood_floors_and_names():
    from keras_vae import likelihoods

    params = np.full((1, 2, 2, 2), -40.0, "float32")  # loc −40, raw scale −40
    for cls in (likelihoods.DiscretizedLogistic, likelihoods.GaussianLearnedScale):
        distribution = cls(min_scale=0.3).distribution(params, 3)
        scale = distribution.distribution.distribution.scale \
            if cls is likelihoods.DiscretizedLogistic else distribution.distribution.scale
        np.testing.assert_allclose(np.asarray(scale), 0.3, rtol=1e-6)
    with pytest.raises(ValueError, match=r"Unknown likelihood: 'poisson'\. Expected one of"):
        likelihoods.get("poisson")
    assert likelihoods.ContinuousBernoulli().distribution(
        np.zeros((1, 2, 2, 1), "float32"), 3).dtype == np.float32


def test_bits_per_dimension_is_float64_and_checks_the_convention():
    got = evaluation.bits_per_dimension(np.float32([100.1]), 784)
    assert got.dtype == np.float64
    with pytest.raises(ValueError, match="Unknown bits-per-dimension convention: 'nats'"):
        evaluation.bits_per_dimension(100.0, 784, "nats")


def test_the_likelihood_of_a_model_whose_weights_are_equal_is_exact():
    """With every network weight 0, p(x|z) = ½ per pixel for any z and q(z|x)
    is (nearly) the prior: every importance weight is 2^-16, and any k, chunk
    or batch size must give log p(x) = −16 ln 2 (to the 1e-4 scale floor)."""
    vae = keras_vae.VAE((4, 4, 1), latent_dim=2, hidden_units=(8,), seed=1)
    for layer in (vae.encoder, vae.decoder):
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    x = (RNG.random((5, 4, 4, 1)) > 0.5).astype("float32")
    exact = -16 * math.log(2)
    for k, chunk, batch in ((1, 250, 100), (6, 4, 2), (7, 3, 5), (250, 100, 3)):
        got = evaluation.log_likelihood(vae, x, num_samples=k, batch_size=batch,
                                        chunk_size=chunk, verbose=False)
        np.testing.assert_allclose(got, exact, atol=1e-3)
    np.testing.assert_allclose(evaluation.negative_elbo(vae, x), -exact, atol=1e-3)
    assert evaluation.anomaly_scores(vae, x, method="log_likelihood",
                                     num_samples=3) == pytest.approx([-exact] * 5, abs=1e-3)


def test_active_units_by_monte_carlo_take_off_the_noise_of_the_draws(model_and_data,
                                                                      monkeypatch):
    vae, _ = model_and_data
    x = (np.random.default_rng(3).random((4000, 4, 4, 1)) > 0.5).astype("float32")
    exact = np.asarray(vae.encode(x)[0], "float64").var(axis=0)  # a Gaussian's loc
    monkeypatch.setattr(vae.posterior_family, "loc_is_mean", False, raising=False)
    monkeypatch.setattr(evaluation, "MEAN_SAMPLES", 20)
    _, variances = evaluation.active_units(vae, x, threshold=0.0)
    noise = np.asarray(vae.encode(x)[1], "float64") ** 2 / 20  # Var_q / S, ≈ 0.08 here
    assert noise.mean() > 0.05
    np.testing.assert_allclose(variances, exact, atol=0.015)  # about 4 standard errors


def test_the_noise_correction_has_the_factor_of_a_variance_over_n_examples(monkeypatch):
    """Two copies of one image: E_q[z|x] does not vary, so the estimate must
    be 0 on average over 1600 dimensions. The draws' means differ by noise
    whose variance over two examples is (1 - 1/2) Var_q/S on average: half of
    the correction; subtracting all of it, or none, misses 0 by that half.
    With S = 2 draws, a noise estimate without ddof=1 misses it by a quarter."""
    vae = keras_vae.VAE((4, 4, 1), latent_dim=1600, hidden_units=(8,), seed=2)
    x = np.repeat((np.random.default_rng(4).random((1, 4, 4, 1)) > 0.5), 2, 0).astype("float32")
    monkeypatch.setattr(vae.posterior_family, "loc_is_mean", False, raising=False)
    monkeypatch.setattr(evaluation, "MEAN_SAMPLES", 2)
    _, variances = evaluation.active_units(vae, x, threshold=0.0)
    half = 0.5 * np.mean(np.asarray(vae.encode(x)[1], "float64") ** 2) / 2
    assert abs(np.mean(variances)) < 0.25 * half, (np.mean(variances), half)


# === Defaults and messages that carry numbers ===
def test_evaluation_defaults_and_refusals(model_and_data):
    vae, x = model_and_data
    count, variances = evaluation.active_units(vae, x)
    assert count == int(np.sum(variances > 0.01))  # Burda et al.'s threshold
    scores = RNG.normal(size=1000)
    assert evaluation.anomaly_threshold(scores) == pytest.approx(np.quantile(scores, 0.99))
    with pytest.raises(ValueError, match=r"1 of the 3 normal scores are NaN or infinite"):
        evaluation.auroc([0.0, np.nan, 1.0], [2.0])
    with pytest.raises(ValueError, match=r"2 of the 2 anomaly scores are NaN or infinite"):
        evaluation.auroc([0.0, 1.0], [np.inf, np.nan])
    for normal, anomalous in (([], [1.0]), ([1.0], [])):
        with pytest.raises(ValueError, match="needs scores of both kinds"):
            evaluation.auroc(normal, anomalous)

    class Foreign:  # a user's likelihood without `kind`: taken as a density
        pass

    assert evaluation.bits_convention(Foreign(), binarized=False) == ("8bit_density", None)


def test_evaluating_a_model_again_traces_once_and_reads_the_weights_as_they_are(model_and_data):
    """The evaluator keeps its traced chunk per (model, precision): a second
    evaluation traces nothing, and after the weights change it gives what a
    freshly traced chunk gives, not the old estimate."""
    _, x = model_and_data
    vae = keras_vae.VAE((4, 4, 1), latent_dim=3, hidden_units=(8,), seed=5)

    def estimate():
        return evaluation.log_likelihood(vae, x[:4], num_samples=6, chunk_size=4, seed=0,
                                         verbose=False)

    first = estimate()
    chunk = evaluation._chunk_log_weights(vae, "float32")
    traces = chunk.experimental_get_tracing_count()
    assert traces >= 1  # the chunk the evaluation traced is the one kept
    np.testing.assert_array_equal(estimate(), first)
    assert chunk.experimental_get_tracing_count() == traces
    for weight in vae.decoder.weights:
        weight.assign(weight * 0.5)
    changed = estimate()
    assert chunk.experimental_get_tracing_count() == traces
    evaluation._chunk_log_weights.cache_clear()
    np.testing.assert_array_equal(changed, estimate())  # traced afresh
    assert np.all(np.abs(changed - first) > 1e-3)


def test_log_likelihood_depends_on_its_seed(model_and_data):
    vae, x = model_and_data
    one = evaluation.log_likelihood(vae, x[:4], num_samples=5, seed=1, verbose=False)
    two = evaluation.log_likelihood(vae, x[:4], num_samples=5, seed=2, verbose=False)
    assert not np.allclose(one, two)


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
