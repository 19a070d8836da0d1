"""The objectives (keras_vae.objectives) against NumPy on the same draws."""

import math

import keras
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
    keras.utils.set_random_seed(3)  # the weights, whatever ran before
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
    with pytest.raises(ValueError, match=r"Unknown objective: 'vimco'. Expected one of \['ciwae', 'elbo', 'iwae', 'miwae', "
                       r"'piwae'\]"):
        keras_vae.VAE((4, 4, 1), objective="vimco")


# === The tighter-bound family (Rainforth et al., 2018) ===
GROUPS, PER_GROUP = 3, 4


def _log_weights(k):
    return RNG.normal(-90, 6, (k, BATCH)).astype("float32")


def test_miwae_averages_the_bounds_of_the_groups():
    log_w = _log_weights(GROUPS * PER_GROUP)
    grouped = log_w.astype("float64").reshape(GROUPS, PER_GROUP, BATCH)
    expected = (logsumexp(grouped, axis=1) - math.log(PER_GROUP)).mean(axis=0)
    got = np.asarray(objectives.multi_sample_bound(log_w, GROUPS))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # One group is IWAE; one sample per group is the Monte-Carlo ELBO.
    np.testing.assert_allclose(np.asarray(objectives.multi_sample_bound(log_w, 1)),
                               logsumexp(log_w, 0) - math.log(len(log_w)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(objectives.multi_sample_bound(log_w, len(log_w))),
                               log_w.astype("float64").mean(axis=0), rtol=1e-6)


@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0])
def test_ciwae_mixes_the_elbo_and_the_iwae_bound(beta):
    log_w = _log_weights(K).astype("float64")
    expected = beta * log_w.mean(axis=0) + (1 - beta) * (logsumexp(log_w, 0) - math.log(K))
    got = np.asarray(objectives.combined_bound(log_w.astype("float32"), beta))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_piwae_surrogate_is_iwae_in_value_and_miwae_where_not_held():
    """log w = a + b, where a is what the held weights keep (the generative
    network) and b what they hold constant (the inference network)."""
    import tensorflow as tf

    a = tf.Variable(_log_weights(GROUPS * PER_GROUP))
    b = tf.Variable(RNG.normal(0, 3, (GROUPS * PER_GROUP, BATCH)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        log_w = a + b
        surrogate = objectives.partially_importance_weighted(
            log_w, a + tf.stop_gradient(b), GROUPS)
        miwae = objectives.multi_sample_bound(log_w, GROUPS)
        iwae = objectives.importance_weighted_bound(log_w)
    np.testing.assert_allclose(surrogate.numpy(), iwae.numpy(), rtol=1e-6)
    for variable, twin in ((a, iwae), (b, miwae)):
        np.testing.assert_allclose(tape.gradient(surrogate, variable).numpy(),
                                   tape.gradient(twin, variable).numpy(), rtol=1e-5, atol=1e-7)
    assert np.abs(np.asarray(tape.gradient(iwae, b) - tape.gradient(miwae, b))).max() > 1e-3


def _numpy_log_weights(vae, terms, weight):
    z = terms.z
    return (np.asarray(terms.log_px, "float64")
            + weight * (np.asarray(vae.prior.log_prob(z), "float64")
                        - np.asarray(terms.posterior.log_prob(z), "float64")))


@pytest.mark.parametrize("objective, options", [
    ("miwae", {"importance_groups": GROUPS}), ("ciwae", {"ciwae_beta": 0.3}),
    ("piwae", {"importance_groups": GROUPS})])
def test_the_models_bound_family_loss_is_computed_from_its_terms(objective, options):
    x = (RNG.random((BATCH, 4, 4, 1)) > 0.5).astype("float32")
    weight = 0.5
    vae = _model(objective=objective, num_samples=GROUPS * PER_GROUP, kl_weight=weight,
                 prior="mixture_of_gaussians", **options)
    terms = vae.elbo_terms(x)
    log_w = _numpy_log_weights(vae, terms, weight)
    if objective == "ciwae":
        bound = 0.3 * log_w.mean(0) + 0.7 * (logsumexp(log_w, 0) - math.log(len(log_w)))
    elif objective == "miwae":
        grouped = log_w.reshape(GROUPS, PER_GROUP, BATCH)
        bound = (logsumexp(grouped, axis=1) - math.log(PER_GROUP)).mean(axis=0)
    else:  # PIWAE's value is the IWAE bound of all the samples
        bound = logsumexp(log_w, 0) - math.log(len(log_w))
    assert float(vae._objective.loss(vae, terms)) == pytest.approx(-bound.mean(), rel=1e-5)


def test_piwae_trains_the_decoder_on_iwae_and_the_encoder_on_miwae():
    """The gradients of PIWAE's loss, on one set of draws, against those of
    the IWAE and MIWAE losses of the same draws."""
    import tensorflow as tf

    x = (RNG.random((BATCH, 4, 4, 1)) > 0.5).astype("float32")
    k = GROUPS * PER_GROUP
    vae = _model(objective="piwae", num_samples=k, importance_groups=GROUPS,
                 prior="learnable_gaussian")
    losses = {name: objectives.get(name) for name in ("piwae", "iwae", "miwae")}
    generative = vae.decoder.trainable_variables + vae.prior.trainable_variables
    inference = vae.encoder.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        terms = vae.elbo_terms(x)
        values = {name: objective.loss(vae, terms) for name, objective in losses.items()}
    assert float(values["piwae"]) == pytest.approx(float(values["iwae"]), rel=1e-6)
    for variables, twin in ((generative, "iwae"), (inference, "miwae")):
        got = tape.gradient(values["piwae"], variables)
        expected = tape.gradient(values[twin], variables)
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-4, atol=1e-6)
    # Not a trivial case: IWAE's and MIWAE's encoder gradients differ.
    iwae_grad = tape.gradient(values["iwae"], inference)[0].numpy()
    miwae_grad = tape.gradient(values["miwae"], inference)[0].numpy()
    assert np.abs(iwae_grad - miwae_grad).max() > 1e-4


def test_the_bound_family_parameters_are_checked():
    with pytest.raises(ValueError, match=r"importance_groups must divide num_samples.*"
                                         r"Received: importance_groups=3 with num_samples=8"):
        _model(objective="miwae", num_samples=8, importance_groups=3)
    with pytest.raises(ValueError, match=r"in \[0, 1\] for ciwae_beta. Received: "
                                         r"ciwae_beta=1.5"):
        _model(objective="ciwae", num_samples=4, ciwae_beta=1.5)
    with pytest.raises(ValueError, match="importance_groups > 1 cannot be combined with "
                                         "objective='iwae'.*Use objective='miwae'"):
        _model(objective="iwae", num_samples=4, importance_groups=2)
    with pytest.raises(ValueError, match="ciwae_beta != 0.5 cannot be combined with "
                                         "objective='elbo'"):
        _model(ciwae_beta=0.9)


@pytest.mark.parametrize("objective, options", [
    ("miwae", {"importance_groups": 2}), ("ciwae", {"ciwae_beta": 0.2}),
    ("piwae", {"importance_groups": 2})])
def test_the_bound_family_fits_saves_and_loads(objective, options, tmp_path):
    import keras

    x = (RNG.random((64, 4, 4, 1)) > 0.5).astype("float32")
    vae = _model(objective=objective, num_samples=4, **options)
    vae.compile(optimizer="adam")
    before = [w.numpy().copy() for w in vae.trainable_weights]
    history = vae.fit(x, epochs=2, batch_size=16, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    assert all(np.any(b != w.numpy()) for b, w in zip(before, vae.trainable_weights, strict=True))
    path = str(tmp_path / "model.keras")
    vae.save(path)
    loaded = keras.saving.load_model(path)
    assert (loaded.objective, loaded.importance_groups, loaded.ciwae_beta) == (
        objective, options.get("importance_groups", 1), options.get("ciwae_beta", 0.5))
