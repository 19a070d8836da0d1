"""The combinations that broke or misreported, each against an independent
computation (issue: every option works with every other)."""

import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import has_bfloat16_units, small_vae

import keras_vae
from keras_vae import evaluation, likelihoods, priors, runs
from keras_vae.training import replicas


# === The discretized logistic through fit, evaluate and predict ===
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


@pytest.mark.parametrize("name", sorted(likelihoods._REGISTRY))
def test_distribution_mean_equals_mean_of_the_params(name):
    """What `predict` returns (the distribution's mean) is what `decode` returns."""
    likelihood = likelihoods.get(name)
    rng = np.random.default_rng(0)
    params = rng.normal(size=(3, 4, 4, likelihood.params_size)).astype("float32")
    want = np.asarray(likelihood.mean(params))
    got = np.asarray(likelihood.distribution_mean(likelihood.distribution(params, 3)))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    if name == "discretized_logistic":  # clip(loc) written out
        np.testing.assert_allclose(got, np.clip(params[..., :1], 0, 1), atol=1e-6)


# === evaluate reports the real negative ELBO, and the training objective apart ===
@pytest.fixture(scope="module")
def weighted_run(tmp_path_factory):
    config = keras_vae.config.resolve({
        "limit": 300, "epochs": 1, "batch_size": 100, "hidden_units": [16],
        "latent_dim": 2, "kl_weight": 0.2, "likelihood": "gaussian",
        "binarize": "none"})
    run_dir = str(tmp_path_factory.mktemp("weighted") / "run")
    runs.train(config, run_dir, verbose=0)
    return run_dir


def test_evaluate_reports_the_negative_elbo_at_weight_one(weighted_run):
    scores = runs.evaluate(weighted_run, verbose=0, iw_samples=2)
    rec, kl = scores["reconstruction_loss"], scores["kl_loss"]
    assert scores["negative_elbo"] == pytest.approx(rec + kl, rel=1e-6)
    # The objective that fit minimised weighs the KL by 0.2, named as such.
    assert scores["training_objective"] == pytest.approx(rec + 0.2 * kl, rel=1e-4)
    assert scores["training_objective_name"] == "negative ELBO with KL weight 0.2"
    assert scores["kl_weight"] == pytest.approx(0.2)
    with open(os.path.join(weighted_run, "evaluation.json")) as f:
        assert json.load(f)["negative_elbo"] == pytest.approx(rec + kl, rel=1e-6)
    # A density on [0, 1] data from 8-bit levels: + D ln 256, never negative.
    d = 28 * 28
    want = (scores["negative_log_likelihood"] + d * math.log(256)) / (d * math.log(2))
    assert scores["bits_per_dimension"] == pytest.approx(want, rel=1e-9)
    assert scores["bits_per_dimension"] > 0
    assert "ln 256" in scores["bits_per_dimension_convention"]


def test_objective_names_say_what_the_loss_is():
    assert runs.objective_name(small_vae()) == "negative ELBO"
    vae = small_vae(free_bits=0.5)
    vae.kl_weight = 0.5  # where a cyclical schedule may end
    assert runs.objective_name(vae) == (
        "negative ELBO with KL weight 0.5, free bits 0.5 nats per dimension")
    assert runs.objective_name(small_vae(objective="iwae", num_samples=5)) == (
        "negative IWAE bound (k=5)")
    assert runs.objective_name(small_vae(objective="miwae", num_samples=6,
                                         importance_groups=2)) == (
        "negative MIWAE bound (M=2, K=3)")
    assert runs.objective_name(small_vae(objective="ciwae", num_samples=4,
                                         ciwae_beta=0.25)) == (
        "negative CIWAE bound (β=0.25, k=4)")
    assert runs.objective_name(small_vae(objective="piwae", num_samples=8,
                                         importance_groups=4)) == (
        "negative IWAE bound (k=8); PIWAE trains the encoder on MIWAE (M=4, K=2)")


# === Bits per dimension only where they mean something ===
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


# === The mixture log-density stays accurate at small scales ===
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


# === Replicas: uneven splits and free bits over the global batch ===
def test_an_uneven_split_gives_every_example_its_own_noise(strategy):
    x = np.random.default_rng(0).uniform(size=(33, 6, 6, 1)).astype("float32")
    with strategy.scope():
        vae = small_vae(latent_dim=4, num_samples=2)
    batch = next(iter(strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(x).batch(33))))

    def noise(b):
        with replicas.global_batch(vae, b):
            return replicas.noise(vae, tf.shape(b)[0])

    first, second = (np.asarray(t) for t in strategy.experimental_local_results(
        strategy.run(noise, args=(batch,))))
    assert first.shape == (2, 17, 4) and second.shape == (2, 16, 4)
    together = np.concatenate([first, second], axis=1)
    assert len(np.unique(together[..., 0])) == 2 * 33  # no row shared
    np.testing.assert_allclose(together, np.asarray(replicas.noise(small_vae(
        latent_dim=4, num_samples=2), 33)))


def test_free_bits_floor_the_global_batch_mean_under_mirrored(strategy, small_data):
    def trained(scope):
        with scope:
            vae = small_vae(free_bits=0.5, num_samples=2)
            vae.compile(optimizer="sgd")
        history = vae.fit(small_data, epochs=2, batch_size=32, shuffle=False, verbose=0)
        return vae, history.history

    single, single_history = trained(tf.distribute.get_strategy().scope())
    mirrored, mirrored_history = trained(strategy.scope())
    np.testing.assert_allclose(mirrored_history["loss"], single_history["loss"], rtol=1e-5)
    for a, b in zip(single.get_weights(), mirrored.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_free_bits_use_the_global_mean_not_each_replicas(strategy):
    """Two replicas whose own KL means fall on either side of the floor."""
    rng = np.random.default_rng(0)
    x = np.concatenate([np.zeros((16, 6, 6, 1)), np.ones((16, 6, 6, 1))]).astype("float32")
    x = np.clip(x + 0.05 * rng.normal(size=x.shape), 0, 1).astype("float32")
    with strategy.scope():
        vae = small_vae(free_bits=0.4, latent_dim=3)
    per_dim = np.asarray(vae.kl_per_dimension(x), "float64")
    global_mean = per_dim.mean(axis=0)
    batch = next(iter(strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(x).batch(32))))

    def loss(b):
        with replicas.global_batch(vae, b):
            share, mean = replicas.kl_share_and_mean(vae, vae.kl_per_dimension(b))
            return keras_vae.objectives.free_bits_kl(share, mean, vae.free_bits)

    parts = [np.asarray(t) for t in strategy.experimental_local_results(
        strategy.run(loss, args=(batch,)))]
    # Keras divides each replica's add_loss by 2 and sums: the global value.
    want = np.maximum(global_mean, 0.4).sum()
    assert sum(parts) / 2 == pytest.approx(want, rel=1e-5)


# === Refusals at construction, naming the right option ===
def test_free_bits_with_the_full_covariance_posterior_blames_the_posterior():
    with pytest.raises(ValueError, match=r"free_bits > 0 cannot be combined with "
                       r"posterior='full_covariance'.*posterior='diagonal'"):
        small_vae(free_bits=1.0, posterior="full_covariance")


def test_a_conditional_vae_with_the_vamp_prior_is_refused_at_construction():
    with pytest.raises(ValueError, match="a ConditionalVAE.*prior='vamp'|prior='vamp'.*"
                       "ConditionalVAE"):
        keras_vae.ConditionalVAE(input_shape=(6, 6, 1), num_classes=3, prior="vamp",
                                 latent_dim=2, hidden_units=(8,))


# === VampPrior pseudo-inputs stay in the likelihood's range, whatever it is ===
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


# === A NaN anomaly score is an error, not an anomaly ===
def test_auroc_refuses_nan_scores():
    assert evaluation.auroc([1.0, 2.0], [3.0, 4.0]) == 1.0
    with pytest.raises(ValueError, match="1 of the 3 anomaly scores are NaN"):
        evaluation.auroc([1.0, 2.0], [3.0, np.nan, 4.0])
    with pytest.raises(ValueError, match="1 of the 2 normal scores are NaN"):
        evaluation.auroc([np.nan, 2.0], [3.0])


# === The full-covariance posterior has the exact KL to Gaussian priors ===
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


# === Tests that bite: the IWAE bound against NumPy on the same draws ===
def test_iwae_loss_against_numpy_on_the_same_draws(small_data):
    k = 5
    vae = small_vae(objective="iwae", num_samples=k, kl_weight=0.7, latent_dim=3)
    x = small_data[:16]
    terms = vae.elbo_terms(x)
    loss = float(keras_vae.objectives.get(vae.objective).loss(vae, terms))
    z = np.asarray(terms.z, "float64")  # (k, batch, d)
    loc = np.asarray(terms.posterior.distribution.loc, "float64")
    scale = np.asarray(terms.posterior.distribution.scale, "float64")

    def log_normal(v, m, s):
        return (-0.5 * ((v - m) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)).sum(-1)

    log_px = np.asarray(terms.log_px, "float64")
    log_w = log_px + 0.7 * (log_normal(z, 0.0, 1.0) - log_normal(z, loc, scale))
    bound = np.logaddexp.reduce(log_w, axis=0) - np.log(k)
    assert loss == pytest.approx(-bound.mean(), rel=1e-5, abs=1e-4)
    # The − log k term alone moves the loss by log 5 ≈ 1.6 nats.
    assert abs(loss - (-(bound + np.log(k)).mean())) > 1.5


# === Every accepted option changes the result ===
_DEFAULT_LEVELS = {"likelihood": "bernoulli", "prior": "standard_normal",
                   "posterior": "diagonal", "objective": "elbo", "network": "mlp",
                   "conditional": "no", "free_bits": "0", "num_samples": "1",
                   "use_exact_kl": "True", "importance_groups": "1", "ciwae_beta": "0.5",
                   "sampler": "prior", "hierarchy": "none", "precision": "float32"}
# What each option is varied against: the default model, or the objective
# that uses the option at its default.
_BASE = {"objective": {"num_samples": 3},
         "importance_groups": {"objective": "miwae", "num_samples": 3},
         "ciwae_beta": {"objective": "ciwae", "num_samples": 3}}


def _model_kwargs(option, level):
    return {
        "likelihood": {"likelihood": level},
        "prior": {"prior": level},
        "posterior": {"posterior": level},
        "objective": {"objective": level, "num_samples": 3},
        "network": {"encoder": level, "decoder": level, "conv_filters": (4,)},
        "free_bits": {"free_bits": 5.0},
        "num_samples": {"num_samples": 3},
        "use_exact_kl": {"use_exact_kl": False},
        "importance_groups": {**_BASE["importance_groups"], "importance_groups": 3},
        "ciwae_beta": {**_BASE["ciwae_beta"], "ciwae_beta": 0.1},
        "hierarchy": {"latent_dims": (3, 2), "inference": level},
    }[option]


@pytest.mark.parametrize("option, level", [
    (option, level) for option, levels in keras_vae.compatibility.LEVELS.items()
    for level in levels if level != _DEFAULT_LEVELS[option]
    and option not in ("conditional", "sampler", "precision")])
def test_each_accepted_option_changes_the_loss(small_data, option, level):
    x = small_data[:16]

    def loss(**kwargs):
        # After a few steps: a learnable prior starts as the standard normal.
        vae = small_vae(**kwargs)
        vae.compile(optimizer=keras.optimizers.Adam(0.05))
        vae.fit(x, epochs=3, batch_size=16, shuffle=False, verbose=0)
        return vae.evaluate(x, batch_size=16, verbose=0, return_dict=True)["loss"]

    base, varied = loss(**_BASE.get(option, {})), loss(**_model_kwargs(option, level))
    assert np.isfinite(varied) and abs(varied - base) > 1e-3 * abs(base), (base, varied)


def test_a_fitted_sampler_changes_the_samples(small_data):
    # The sampler acts after training: it changes what `sample` draws.
    vae = small_vae()
    vae.add_sampler("gmm", keras_vae.samplers.GaussianMixtureSampler(2).fit(vae, small_data))
    prior, fitted = (np.asarray(vae.sample(8, seed=1, sampler=s)) for s in (None, "gmm"))
    assert np.abs(prior - fitted).max() > 1e-3


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


def test_a_conditional_model_uses_its_labels(small_data):
    vae = keras_vae.ConditionalVAE(input_shape=(6, 6, 1), num_classes=3, latent_dim=3,
                                   hidden_units=(8,), seed=7)
    z = np.zeros((2, 3), "float32")
    a, b = (np.asarray(vae.decode(z, labels=[c, c])) for c in (0, 2))
    assert np.abs(a - b).max() > 1e-4
