"""keras_vae.evaluation: the importance-sampled log-likelihood, bits per
dimension and their conventions, the negative ELBO, active units, the KL per
dimension, anomaly scores and AUROC, against NumPy and closed forms."""

import math

import keras
import numpy as np
import pytest
from conftest import has_bfloat16_units, small_vae
from reference import gaussian_kl, gaussian_kl_per_dimension

import keras_vae
from keras_vae import evaluation, likelihoods

RNG = np.random.default_rng(3)


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
    kl = gaussian_kl(loc, scale)
    assert scores.shape == (40,)
    assert np.all(scores > kl)  # reconstruction > 0 for binary data
    np.testing.assert_allclose(np.asarray(terms.kl), kl, rtol=1e-4)
    # The ELBO anomaly score is the same statistic, with another draw of z: the
    # paired difference is within four standard errors of its Monte-Carlo noise.
    other = evaluation.anomaly_scores(vae, x)
    difference = other - scores
    assert abs(difference.mean()) < 4 * difference.std(ddof=1) / np.sqrt(len(x))
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
    kl = gaussian_kl_per_dimension(loc, scale)
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
    chunk = evaluation.estimates._chunk_log_weights(vae, "float32")
    traces = chunk.experimental_get_tracing_count()
    assert traces >= 1  # the chunk the evaluation traced is the one kept
    np.testing.assert_array_equal(estimate(), first)
    assert chunk.experimental_get_tracing_count() == traces
    for weight in vae.decoder.weights:
        weight.assign(weight * 0.5)
    changed = estimate()
    assert chunk.experimental_get_tracing_count() == traces
    evaluation.estimates._chunk_log_weights.cache_clear()
    np.testing.assert_array_equal(changed, estimate())  # traced afresh
    assert np.all(np.abs(changed - first) > 1e-3)


def test_log_likelihood_depends_on_its_seed(model_and_data):
    vae, x = model_and_data
    one = evaluation.log_likelihood(vae, x[:4], num_samples=5, seed=1, verbose=False)
    two = evaluation.log_likelihood(vae, x[:4], num_samples=5, seed=2, verbose=False)
    assert not np.allclose(one, two)


def test_iwae_bound_is_above_the_elbo_and_rises_with_k(mnist):
    (x, _), _ = mnist
    keras.utils.set_random_seed(0)
    vae = keras_vae.VAE(input_shape=(28, 28, 1), latent_dim=8, hidden_units=(64,), seed=0)
    vae.compile(optimizer="adam")
    vae.fit(x[:1000], epochs=2, batch_size=100, verbose=0)
    bounds = {}
    for k in (1, 5, 50):
        model = keras_vae.VAE(input_shape=(28, 28, 1), latent_dim=8, hidden_units=(64,),
                              objective="iwae", num_samples=k, seed=1)
        model.set_weights(vae.get_weights())
        model.compile(optimizer="adam")
        bounds[k] = -model.evaluate(x[:300], batch_size=300, verbose=0, return_dict=True)["loss"]
    elbo = -vae.evaluate(x[:300], batch_size=300, verbose=0, return_dict=True)["loss"]
    assert bounds[1] == pytest.approx(elbo, abs=1.0)  # k = 1 is the ELBO
    assert elbo < bounds[5] < bounds[50], (elbo, bounds)


def _linear_gaussian_vae(scale_factor=1.0, shift=0.0):
    """A VAE whose marginal p(x) is Gaussian, with its exact posterior.

    Decoder x = z W + b with noise σ, so p(x) = N(b, WᵀW + σ² I). W has
    orthogonal rows, so the posterior is a diagonal Gaussian and the encoder
    can be set to it exactly; `scale_factor` and `shift` spoil it.
    """
    d, D, sigma = 2, 5, 0.5
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    W = (q[:d] * np.array([[1.5], [0.7]])).astype("float32")
    b = rng.normal(size=D).astype("float32")
    decoder = keras.Sequential([keras.Input((d,)), keras.layers.Dense(D)])
    decoder.layers[0].set_weights([W, b])
    cov_post = np.linalg.inv(np.eye(d) + W @ W.T / sigma**2)
    encoder = keras.Sequential([keras.Input((D,)), keras.layers.Dense(2 * d)])
    loc_kernel = W.T @ cov_post / sigma**2
    std = np.sqrt(np.diag(cov_post)) * scale_factor
    raw = np.log(np.expm1(std - 1e-4)) - np.log(np.e - 1)
    encoder.layers[0].set_weights([
        np.concatenate([loc_kernel, np.zeros((D, d))], axis=1).astype("float32"),
        np.concatenate([-b @ loc_kernel + shift, raw]).astype("float32")])
    vae = keras_vae.VAE(input_shape=(D,), latent_dim=d, encoder=encoder, decoder=decoder,
                        likelihood=keras_vae.likelihoods.Gaussian(scale=sigma))
    x = (rng.normal(size=(20, d)) @ W + b + sigma * rng.normal(size=(20, D))).astype("float32")
    covariance = W.T @ W + sigma**2 * np.eye(D)
    diff = x - b
    exact = -0.5 * (np.einsum("ij,jk,ik->i", diff, np.linalg.inv(covariance), diff)
                    + np.linalg.slogdet(covariance)[1] + D * np.log(2 * np.pi))
    return vae, x, exact


def test_log_likelihood_is_exact_with_the_exact_posterior():
    vae, x, exact = _linear_gaussian_vae()
    # Every importance weight equals p(x): any k gives log p(x).
    estimate = evaluation.log_likelihood(vae, x, num_samples=10, verbose=False)
    np.testing.assert_allclose(estimate, exact, atol=1e-3)


def test_log_likelihood_converges_with_an_imperfect_posterior():
    vae, x, exact = _linear_gaussian_vae(scale_factor=1.5, shift=0.3)
    estimate = evaluation.log_likelihood(vae, x, num_samples=5000, verbose=False)
    # Stated tolerance with k = 5000: 0.05 nats per example, 0.015 on average.
    np.testing.assert_allclose(estimate, exact, atol=0.05)
    assert np.mean(np.abs(estimate - exact)) < 0.015
    elbo = -evaluation.negative_elbo(vae, x)
    assert np.mean(elbo) < np.mean(estimate) - 0.05  # the ELBO is looser


def test_active_units_and_kl_per_dimension_of_a_small_model_against_numpy(small_data):
    vae = small_vae(latent_dim=3)
    count, variances = evaluation.active_units(vae, small_data)
    loc, scale = (np.asarray(t, "float64") for t in vae.encode(small_data))
    np.testing.assert_allclose(variances, loc.var(axis=0), rtol=1e-4)
    assert count == int(np.sum(loc.var(axis=0) > 0.01))
    want = gaussian_kl_per_dimension(loc, scale).mean(axis=0)
    np.testing.assert_allclose(evaluation.kl_per_dimension(vae, small_data), want, rtol=1e-4)
    assert evaluation.bits_per_dimension(np.log(2) * 784, 784) == pytest.approx(1.0)


def test_anomaly_scores_separate_digits_from_noise(mnist):
    (x, _), (x_test, _) = mnist
    keras.utils.set_random_seed(0)
    vae = keras_vae.VAE(input_shape=(28, 28, 1), latent_dim=8, hidden_units=(128,))
    vae.compile(optimizer="adam")
    vae.fit(x, epochs=2, batch_size=100, verbose=0)
    normal = evaluation.anomaly_scores(vae, x_test[:250])
    noise = np.random.default_rng(0).uniform(size=(250, 28, 28, 1)).astype("float32")
    anomalous = evaluation.anomaly_scores(vae, noise)
    assert evaluation.auroc(normal, anomalous) > 0.99
    threshold = evaluation.anomaly_threshold(normal[:125], quantile=0.95)
    assert np.mean(anomalous > threshold) > 0.95
    assert np.mean(normal[125:] > threshold) < 0.2


def test_auroc_against_a_direct_count():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(0.5, size=40)
    b[:5] = a[:5]  # ties
    direct = np.mean([(1.0 if bj > ai else 0.5 if bj == ai else 0.0) for ai in a for bj in b])
    assert evaluation.auroc(a, b) == pytest.approx(direct)


def test_bits_per_dimension_conventions():
    d, nll = 784, 500.0
    assert evaluation.bits_per_dimension(nll, d) == pytest.approx(nll / (d * math.log(2)))
    assert evaluation.bits_per_dimension(nll, d, "8bit_density") == pytest.approx(
        (nll + d * math.log(256)) / (d * math.log(2)))
    # A good Gaussian model has a negative NLL in nats; still positive bits.
    assert evaluation.bits_per_dimension(-1000.0, d, "8bit_density") > 0
    with pytest.raises(ValueError, match="Unknown bits-per-dimension convention: 'x'"):
        evaluation.bits_per_dimension(nll, d, "x")


@pytest.mark.parametrize("name, binarized, want", [
    ("bernoulli", True, "discrete"),
    ("bernoulli", False, None),
    ("discretized_logistic", False, "discrete"),
    ("discretized_logistic", True, "discrete"),
    ("gaussian", False, "8bit_density"),
    ("gaussian", True, None),
    ("gaussian_learned_scale", False, "8bit_density"),
    ("continuous_bernoulli", False, "8bit_density"),
    ("continuous_bernoulli", True, None),
])
def test_bits_convention_of_each_likelihood(name, binarized, want):
    convention, reason = evaluation.bits_convention(likelihoods.get(name), binarized)
    assert convention == want
    assert (reason is None) == (want is not None)
    if reason:
        assert type(likelihoods.get(name)).__name__ in reason


def test_auroc_refuses_nan_scores():
    assert evaluation.auroc([1.0, 2.0], [3.0, 4.0]) == 1.0
    with pytest.raises(ValueError, match="1 of the 3 anomaly scores are NaN"):
        evaluation.auroc([1.0, 2.0], [3.0, np.nan, 4.0])
    with pytest.raises(ValueError, match="1 of the 2 normal scores are NaN"):
        evaluation.auroc([np.nan, 2.0], [3.0])


def test_the_evaluators_precision_changes_the_estimate(small_data):
    # The precision acts at evaluation: bfloat16 products move log p(x) a little.
    vae = small_vae(hidden_units=(16,))
    for layer in vae.decoder.layers:  # logits of several nats, where rounding shows
        if hasattr(layer, "kernel"):
            layer.kernel.assign(4.0 * layer.kernel.numpy())
    estimates = [keras_vae.evaluation.log_likelihood(vae, small_data[:8], num_samples=20,
                                                     verbose=False, precision=p)
                 for p in ("float32", "bfloat16")]
    # Emulated bfloat16 products (no AMX or AVX512-BF16) round more coarsely.
    bound = 0.5 if has_bfloat16_units() else 1.5
    assert 1e-4 < np.abs(estimates[0] - estimates[1]).max() < bound

