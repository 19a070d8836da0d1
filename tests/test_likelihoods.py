"""Each likelihood's log-probability against an independent NumPy formula."""

import math

import keras
import numpy as np
import pytest
from conftest import small_vae
from reference import log_sigmoid

from keras_vae import likelihoods

RNG = np.random.default_rng(1)
SHAPE = (3, 4, 4, 2)  # batch of 3 images of 4×4×2


@pytest.mark.parametrize("binary", [True, False])
def test_bernoulli_log_prob_is_binary_cross_entropy(binary):
    logits = RNG.normal(size=SHAPE).astype("float32")
    x = RNG.uniform(size=SHAPE).astype("float32")
    if binary:
        x = np.round(x)
    got = likelihoods.Bernoulli().distribution(logits, event_ndims=3).log_prob(x)
    want = (x * log_sigmoid(logits) + (1 - x) * log_sigmoid(-logits)).sum((1, 2, 3))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_bernoulli_log_prob_of_the_model_broadcasts_samples_against_the_data():
    """The model's path (`Bernoulli.log_prob`): codes `(k, batch)` decoded,
    scored against the batch's images, large logits included."""
    bernoulli = likelihoods.Bernoulli()
    logits = (RNG.normal(size=(5,) + SHAPE) * 30).astype("float32")
    x = np.round(RNG.uniform(size=SHAPE)).astype("float32")
    got = bernoulli.log_prob(bernoulli.distribution(logits, event_ndims=3), x)
    want = (x * log_sigmoid(logits) + (1 - x) * log_sigmoid(-logits)).sum((2, 3, 4))
    assert got.shape == (5, 3)
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


def test_continuous_bernoulli_against_its_closed_form():
    logits = RNG.normal(size=SHAPE).astype("float32")
    x = RNG.uniform(size=SHAPE).astype("float32")
    continuous = likelihoods.ContinuousBernoulli()
    got = continuous.distribution(logits, event_ndims=3).log_prob(x)
    # The model's path too (Bernoulli, its base class, has a faster log_prob).
    np.testing.assert_allclose(
        continuous.log_prob(continuous.distribution(logits, event_ndims=3), x), got, rtol=1e-6)
    lam = 1 / (1 + np.exp(-logits.astype("float64")))
    # C(λ) = 2 artanh(1 − 2λ) / (1 − 2λ), Loaiza-Ganem & Cunningham (2019).
    log_c = np.log(2 * np.arctanh(1 - 2 * lam) / (1 - 2 * lam))
    want = (x * np.log(lam) + (1 - x) * np.log(1 - lam) + log_c).sum((1, 2, 3))
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_discretized_logistic_against_numpy():
    params = np.empty(SHAPE[:-1] + (2 * SHAPE[-1],), "float32")
    params[..., :2] = RNG.uniform(size=SHAPE)  # locs in [0, 1]
    params[..., 2:] = RNG.uniform(1.0, 3.0, size=SHAPE)  # scales of 1.3–3 levels
    # Levels near the locs (far tails underflow a plain NumPy reference),
    # with both edges.
    levels = np.clip(np.round(255 * params[..., :2] + RNG.normal(0, 3, SHAPE)), 0, 255)
    params[0, 0, 0, :2] = [0.005, 0.995]
    levels[0, 0, 0] = [0, 255]
    x = (levels / 255).astype("float32")
    lik = likelihoods.DiscretizedLogistic()
    got = lik.log_prob(lik.distribution(params, event_ndims=3), x)
    mu = 255.0 * params[..., :2].astype("float64")
    scale = 0.01 + np.log1p(np.exp(params[..., 2:].astype("float64") + np.log(np.e - 1)))
    cdf = lambda t: 1 / (1 + np.exp(-(t - mu) / scale))  # noqa: E731
    upper = np.where(levels == 255, 1.0, cdf(levels + 0.5))
    lower = np.where(levels == 0, 0.0, cdf(levels - 0.5))
    want = np.log(upper - lower).sum((1, 2, 3))
    np.testing.assert_allclose(got, want, rtol=1e-3)
    # Probabilities of all 256 levels sum to one.
    one = np.zeros((1, 1, 1, 2), "float32")
    one[..., 0] = 0.3
    dist = lik.distribution(one, event_ndims=1)
    total = sum(float(np.exp(lik.log_prob(dist, np.full((1, 1, 1, 1), k / 255, "float32"))).sum())
                for k in range(256))
    assert total == pytest.approx(1.0, abs=1e-4)


# === Moved here from the milestone modules (test_beyond, test_findings, test_mathematics) ===
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


def test_discretized_logistic_fits_evaluates_and_predicts(small_data):
    x = np.round(small_data * 255) / 255
    vae = small_vae(likelihood="discretized_logistic")
    vae.compile(optimizer="adam")
    history = vae.fit(x, epochs=2, batch_size=32, verbose=0).history
    assert np.all(np.isfinite(history["loss"]))
    logs = vae.evaluate(x, batch_size=32, verbose=0, return_dict=True)
    assert np.isfinite(logs["loss"])
    predicted = vae.predict(x[:4], verbose=0)
    assert predicted.shape == (4, 6, 6, 1)
    assert 0.0 <= predicted.min() and predicted.max() <= 1.0


@pytest.mark.parametrize("name", sorted(likelihoods.names()))
def test_distribution_mean_equals_mean_of_the_params(name):
    """What `predict` returns (the distribution's mean) is what `decode` returns."""
    likelihood = likelihoods.get(name)
    rng = np.random.default_rng(0)
    params = rng.normal(size=(3, 4, 4, likelihood.output_channels(1))).astype("float32")
    want = np.asarray(likelihood.mean(params))
    got = np.asarray(likelihood.distribution_mean(likelihood.distribution(params, 3)))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    if name == "discretized_logistic":  # clip(loc) written out
        np.testing.assert_allclose(got, np.clip(params[..., :1], 0, 1), atol=1e-6)

