"""Priors, the IWAE objective, free bits and evaluation, with real numbers."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_vae

import keras_vae
from keras_vae import callbacks, evaluation, priors


def _log_normal(z, loc, scale):
    return (-0.5 * ((z - loc) / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi)).sum(-1)


def _numpy_prior_log_prob(prior, z, vae=None):
    """log p(z) from the prior's weights, written out in NumPy."""
    softplus = lambda t: np.log1p(np.exp(t + np.log(np.e - 1))) + 1e-4  # noqa: E731
    if isinstance(prior, priors.StandardNormal):
        return _log_normal(z, 0.0, 1.0)
    if isinstance(prior, priors.LearnableGaussian):
        return _log_normal(z, prior.loc.numpy(), softplus(prior.raw_scale.numpy()))
    if isinstance(prior, priors.MixtureOfGaussians):
        locs, scales = prior.locs.numpy(), softplus(prior.raw_scales.numpy())
        logits = prior.logits.numpy()
        log_pi = logits - np.logaddexp.reduce(logits)
        parts = [log_pi[k] + _log_normal(z, locs[k], scales[k]) for k in range(len(locs))]
        return np.logaddexp.reduce(np.stack(parts), axis=0)
    if isinstance(prior, priors.VampPrior):  # the posteriors at the pseudo-inputs
        pseudo = np.clip(prior.pseudo_inputs.numpy(), 0, 1)
        locs, scales = (np.asarray(t, "float64") for t in vae.encode(pseudo))
        parts = [_log_normal(z, locs[k], scales[k]) for k in range(len(locs))]
        return np.logaddexp.reduce(np.stack(parts), axis=0) - np.log(len(locs))
    raise AssertionError(prior)


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
    log_ratio = _log_normal(z, loc, scale) - _numpy_prior_log_prob(prior, z, vae)
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
    parts = [_log_normal(z, loc[k], scale[k]) for k in range(4)]
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
    want = _numpy_prior_log_prob(prior, z, vae)
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
        np.stack([log_pi[j] + _log_normal(z, locs[j], scales[j]) for j in range(k)]), axis=0)
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


def test_iwae_trains(small_data):
    vae = small_vae(objective="iwae", num_samples=5)
    vae.compile(optimizer="adam")
    history = vae.fit(small_data, epochs=3, batch_size=16, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]


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


def test_free_bits_floor_the_kl_per_dimension(small_data):
    vae = small_vae(free_bits=2.0, kl_weight=1.0, latent_dim=3)
    terms = vae.elbo_terms(small_data)
    loss = float(keras_vae.objectives.get(vae.objective).loss(vae, terms))
    loc, scale = (np.asarray(t, "float64") for t in vae.encode(small_data))
    per_dim = (0.5 * (scale**2 + loc**2 - 1 - np.log(scale**2))).mean(axis=0)
    want = float(np.mean(terms.reconstruction)) + np.maximum(per_dim, 2.0).sum()
    assert loss == pytest.approx(want, rel=1e-5)
    # Refused when the model is built (keras_vae.compatibility).
    with pytest.raises(ValueError, match="free_bits > 0 cannot be combined with "
                       "prior='mixture_of_gaussians'"):
        small_vae(free_bits=1.0, prior="mixture_of_gaussians")


def test_active_units_and_kl_per_dimension_against_numpy(small_data):
    vae = small_vae(latent_dim=3)
    count, variances = evaluation.active_units(vae, small_data)
    loc, scale = (np.asarray(t, "float64") for t in vae.encode(small_data))
    np.testing.assert_allclose(variances, loc.var(axis=0), rtol=1e-4)
    assert count == int(np.sum(loc.var(axis=0) > 0.01))
    want = (0.5 * (scale**2 + loc**2 - 1 - np.log(scale**2))).mean(axis=0)
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


def test_cyclical_annealing_schedule():
    schedule = callbacks.CyclicalKLAnnealing(cycle_epochs=4, target=2.0, ratio=0.5)
    assert [schedule.weight_at(e) for e in range(8)] == [0, 1, 2, 2, 0, 1, 2, 2]
    with pytest.raises(ValueError, match=r"ratio in \(0, 1\]"):
        callbacks.CyclicalKLAnnealing(4, ratio=0)


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


# === Conditional generation ===
@pytest.fixture(scope="module")
def mnist_6000():
    (x, y), _ = keras_vae.data.load_mnist()
    return x[:6000].astype("float32") / 255, y[:6000].astype("int32")


def test_conditional_samples_are_classified_as_their_label(mnist_6000):
    x, y = mnist_6000
    keras.utils.set_random_seed(0)
    classifier = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                   keras.layers.Dense(128, activation="relu"),
                                   keras.layers.Dense(10)])
    classifier.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), metrics=["accuracy"])
    classifier.fit(x, y, epochs=3, batch_size=100, verbose=0)
    # A small z leaves the class to the label (measured: 95% after 10 epochs).
    cvae = keras_vae.ConditionalVAE(input_shape=(28, 28, 1), num_classes=10, latent_dim=2,
                                    hidden_units=(256,), seed=0)
    cvae.compile(optimizer="adam")
    cvae.fit({"images": x, "labels": y}, epochs=10, batch_size=100, verbose=0)
    labels = np.repeat(np.arange(10), 30)
    samples = np.asarray(cvae.sample(len(labels), labels=labels, seed=0))
    predicted = np.argmax(classifier.predict(samples, verbose=0), axis=1)
    accuracy = np.mean(predicted == labels)
    assert accuracy > 0.7, accuracy  # chance is 0.1
    sevens = np.argmax(classifier.predict(np.asarray(cvae.sample(30, labels=7)), verbose=0), 1)
    assert np.mean(sevens == 7) > 0.6


def test_conditional_model_checks_labels_and_reloads(tmp_path, small_data):
    cvae = keras_vae.ConditionalVAE(input_shape=(6, 6, 1), num_classes=3, latent_dim=2,
                                    hidden_units=(8,))
    assert cvae.encoder.input_shape == (None, 6, 6, 4)  # image + one-hot channels
    assert cvae.decoder.input_shape == (None, 5)  # z + one-hot
    cvae.compile(optimizer="adam")
    labels = np.arange(64) % 3
    cvae.fit({"images": small_data, "labels": labels}, epochs=1, batch_size=16, verbose=0)
    with pytest.raises(ValueError, match=r"integer labels in \[0, 3\). Received labels from 0 to 5"):
        cvae.fit({"images": small_data, "labels": np.arange(64) % 6}, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="needs labels"):
        cvae.sample(4)
    cvae.save(tmp_path / "c.keras")
    again = keras.models.load_model(tmp_path / "c.keras")
    assert isinstance(again, keras_vae.ConditionalVAE) and again.num_classes == 3
    np.testing.assert_allclose(again.sample(4, labels=[0, 1, 2, 1], seed=2),
                               cvae.sample(4, labels=[0, 1, 2, 1], seed=2), atol=1e-6)
    # The same z decodes differently for different labels.
    z = np.zeros((1, 2), "float32")
    assert not np.allclose(cvae.decode(z, labels=[0]), cvae.decode(z, labels=[2]))


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
