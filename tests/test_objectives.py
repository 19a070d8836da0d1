"""The objectives (keras_vae.objectives) against NumPy on the same draws."""

import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_vae
from reference import (
    gaussian_kl_per_dimension,
    logsumexp,
)

import keras_vae
from keras_vae import objectives, runs
from keras_vae.runs import model_options

RNG = np.random.default_rng(7)


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
    assert float(elbo.objective.loss(elbo, terms)) == pytest.approx(expected, rel=1e-5)

    terms = iwae.elbo_terms(x)
    z = terms.z
    log_w = (np.asarray(terms.log_px, "float64")
             + weight * (np.asarray(iwae.prior.log_prob(z), "float64")
                         - np.asarray(terms.posterior.log_prob(z), "float64")))
    expected = -np.mean(logsumexp(log_w, axis=0) - math.log(K))
    assert float(iwae.objective.loss(iwae, terms)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("free_bits", [0.05, 0.5, 2.0])
def test_free_bits_in_the_model_floor_the_batch_mean_per_dimension(free_bits):
    x = (RNG.random((BATCH, 4, 4, 1)) > 0.5).astype("float32")
    vae = _model(objective=objectives.Elbo(free_bits=free_bits))
    terms = vae.elbo_terms(x)
    per_dimension = np.asarray(vae.kl_per_dimension(x)).mean(axis=0)
    expected = (np.asarray(terms.reconstruction).mean()
                + np.maximum(free_bits, per_dimension).sum())
    assert float(vae.objective.loss(vae, terms)) == pytest.approx(expected, rel=1e-5)
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


@pytest.mark.parametrize("objective", [
    objectives.Miwae(groups=GROUPS), objectives.Ciwae(beta=0.3),
    objectives.Piwae(groups=GROUPS)], ids=repr)
def test_the_models_bound_family_loss_is_computed_from_its_terms(objective):
    x = (RNG.random((BATCH, 4, 4, 1)) > 0.5).astype("float32")
    weight = 0.5
    vae = _model(objective=objective, num_samples=GROUPS * PER_GROUP, kl_weight=weight,
                 prior="mixture_of_gaussians")
    objective = objective.name
    terms = vae.elbo_terms(x)
    log_w = _numpy_log_weights(vae, terms, weight)
    if objective == "ciwae":
        bound = 0.3 * log_w.mean(0) + 0.7 * (logsumexp(log_w, 0) - math.log(len(log_w)))
    elif objective == "miwae":
        grouped = log_w.reshape(GROUPS, PER_GROUP, BATCH)
        bound = (logsumexp(grouped, axis=1) - math.log(PER_GROUP)).mean(axis=0)
    else:  # PIWAE's value is the IWAE bound of all the samples
        bound = logsumexp(log_w, 0) - math.log(len(log_w))
    assert float(vae.objective.loss(vae, terms)) == pytest.approx(-bound.mean(), rel=1e-5)


def test_piwae_trains_the_decoder_on_iwae_and_the_encoder_on_miwae():
    """The gradients of PIWAE's loss, on one set of draws, against those of
    the IWAE and MIWAE losses of the same draws."""

    x = (RNG.random((BATCH, 4, 4, 1)) > 0.5).astype("float32")
    k = GROUPS * PER_GROUP
    vae = _model(objective=objectives.Piwae(groups=GROUPS), num_samples=k,
                 prior="learnable_gaussian")
    losses = {"piwae": vae.objective, "iwae": objectives.Iwae(),
              "miwae": objectives.Miwae(groups=GROUPS)}
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
    with pytest.raises(ValueError, match=r"groups must divide num_samples.*"
                                         r"Received: groups=3 with num_samples=8"):
        _model(objective=objectives.Miwae(groups=3), num_samples=8)
    with pytest.raises(ValueError, match=r"in \[0, 1\] for beta. Received: beta=1.5"):
        objectives.Ciwae(beta=1.5)
    with pytest.raises(ValueError, match=r"Expected an integer >= 1 for groups. Received: groups=0"):
        objectives.Piwae(groups=0)
    with pytest.raises(ValueError, match="objective=Miwae\\(groups > 1\\) cannot be "
                                         "combined with num_samples=1"):
        _model(objective=objectives.Miwae(groups=2))


@pytest.mark.parametrize("objective", [
    objectives.Miwae(groups=2), objectives.Ciwae(beta=0.2), objectives.Piwae(groups=2)],
    ids=repr)
def test_the_bound_family_fits_saves_and_loads(objective, tmp_path):
    import keras

    x = (RNG.random((64, 4, 4, 1)) > 0.5).astype("float32")
    vae = _model(objective=objective, num_samples=4)
    vae.compile(optimizer="adam")
    before = [w.numpy().copy() for w in vae.trainable_weights]
    history = vae.fit(x, epochs=2, batch_size=16, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    assert all(np.any(b != w.numpy()) for b, w in zip(before, vae.trainable_weights, strict=True))
    path = str(tmp_path / "model.keras")
    vae.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.objective) is type(objective)
    assert loaded.objective.get_config() == objective.get_config() != {}


# === Objectives as objects (issue 35) ===
def test_a_name_resolves_to_the_objectives_defaults():
    assert objectives.get("elbo") == objectives.Elbo(free_bits=0.0)
    assert objectives.get("miwae") == objectives.Miwae(groups=1)
    assert objectives.get("ciwae") == objectives.Ciwae(beta=0.5)
    assert objectives.names() == ("elbo", "iwae", "miwae", "ciwae", "piwae")
    assert _model(objective="ciwae", num_samples=2).objective == objectives.Ciwae()


def test_each_objective_serialises_with_its_parameters():
    import keras

    for objective in (objectives.Elbo(free_bits=0.3), objectives.Iwae(),
                      objectives.Miwae(groups=4), objectives.Ciwae(beta=0.1),
                      objectives.Piwae(groups=2)):
        config = keras.saving.serialize_keras_object(objective)
        again = keras.saving.deserialize_keras_object(config)
        assert type(again) is type(objective) and again.get_config() == objective.get_config()
    assert objectives.Miwae(groups=4).get_config() == {"groups": 4}
    assert objectives.Elbo(free_bits=0.3).get_config() == {"free_bits": 0.3}


def test_the_old_keywords_are_mapped_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match=r"importance_groups=2 are deprecated.*"
                                                r"objective=keras_vae.objectives.Miwae\(groups=2\)"):
        vae = _model(objective="miwae", num_samples=4, importance_groups=2)
    assert vae.objective == objectives.Miwae(groups=2)
    with pytest.warns(DeprecationWarning, match=r"free_bits=0.5"):
        assert _model(free_bits=0.5).objective == objectives.Elbo(free_bits=0.5)
    with pytest.warns(DeprecationWarning, match=r"ciwae_beta=0.2"):
        assert _model(objective="ciwae", ciwae_beta=0.2).objective == objectives.Ciwae(0.2)


def test_a_parameter_the_objective_would_ignore_cannot_be_given():
    with pytest.raises(ValueError, match=r"free_bits=0.5 is a parameter of the objective "
                                         r"'elbo'; objective='iwae' takes no free_bits"):
        _model(objective="iwae", num_samples=2, free_bits=0.5)
    with pytest.raises(ValueError, match=r"importance_groups=2 is a parameter of the "
                                         r"objective 'miwae' and 'piwae'; objective='ciwae'"):
        _model(objective="ciwae", num_samples=2, importance_groups=2)
    with pytest.raises(ValueError, match=r"free_bits=0.1 cannot be given to the model beside "
                                         r"the objective Iwae\(\)"):
        _model(objective=objectives.Iwae(), free_bits=0.1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'groups'"):
        objectives.Elbo(groups=2)


def test_a_run_config_builds_the_objective_from_its_keys():
    from keras_vae.runs import config

    kwargs = model_options.model_kwargs(config.resolve({"objective": "piwae", "num_samples": 4,
                                                 "importance_groups": 2}))
    assert kwargs["objective"] == objectives.Piwae(groups=2)
    assert "importance_groups" not in kwargs and "free_bits" not in kwargs
    with pytest.raises(ValueError, match="ciwae_beta=0.3 is a parameter of the objective "
                                         "'ciwae'; objective='elbo' takes no ciwae_beta"):
        model_options.model_kwargs(config.resolve({"ciwae_beta": 0.3}))


def test_objectives_register_by_name():
    registry = objectives.REGISTRY
    with pytest.raises(ValueError, match="The objective name 'elbo' is taken by Elbo"):
        registry.register("elbo")(type("Other", (objectives.Iwae,), {}))
    with pytest.raises(TypeError, match="Only Objective subclasses can be registered"):
        registry.register("plain")(int)
    assert registry.name_of(objectives.Miwae()) == "miwae"
    assert objectives.Miwae(groups=1).level == "iwae"  # one group: the IWAE bound
    assert objectives.Miwae(groups=2).level == "miwae(groups>1)"
    assert objectives.Elbo(free_bits=0.1).level == "elbo(free_bits>0)"


# === Moved here from the milestone modules (test_beyond, test_findings, test_mathematics) ===
def test_iwae_trains(small_data):
    vae = small_vae(objective="iwae", num_samples=5)
    vae.compile(optimizer="adam")
    history = vae.fit(small_data, epochs=3, batch_size=16, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]


def test_free_bits_floor_the_kl_per_dimension(small_data):
    vae = small_vae(objective=keras_vae.objectives.Elbo(free_bits=2.0), kl_weight=1.0,
                    latent_dim=3)
    terms = vae.elbo_terms(small_data)
    loss = float(vae.objective.loss(vae, terms))
    loc, scale = (np.asarray(t, "float64") for t in vae.encode(small_data))
    per_dim = gaussian_kl_per_dimension(loc, scale).mean(axis=0)
    want = float(np.mean(terms.reconstruction)) + np.maximum(per_dim, 2.0).sum()
    assert loss == pytest.approx(want, rel=1e-5)
    # Refused when the model is built (keras_vae.compatibility).
    with pytest.raises(ValueError, match=r"objective=Elbo\(free_bits > 0\) cannot be "
                       "combined with prior='mixture_of_gaussians'"):
        small_vae(objective=keras_vae.objectives.Elbo(free_bits=1.0),
                  prior="mixture_of_gaussians")


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


def test_objective_names_say_what_the_loss_is():
    assert runs.objective_name(small_vae()) == "negative ELBO"
    vae = small_vae(objective=objectives.Elbo(free_bits=0.5))
    vae.kl_weight = 0.5  # where a cyclical schedule may end
    assert runs.objective_name(vae) == (
        "negative ELBO with KL weight 0.5, free bits 0.5 nats per dimension")
    assert runs.objective_name(small_vae(objective="iwae", num_samples=5)) == (
        "negative IWAE bound (k=5)")
    assert runs.objective_name(small_vae(objective=objectives.Miwae(groups=2),
                                         num_samples=6)) == (
        "negative MIWAE bound (M=2, K=3)")
    assert runs.objective_name(small_vae(objective=objectives.Ciwae(beta=0.25),
                                         num_samples=4)) == (
        "negative CIWAE bound (β=0.25, k=4)")
    assert runs.objective_name(small_vae(objective=objectives.Piwae(groups=4),
                                         num_samples=8)) == (
        "negative IWAE bound (k=8); PIWAE trains the encoder on MIWAE (M=4, K=2)")



def test_objectives_are_equal_by_class_and_parameters():
    assert objectives.Miwae(groups=2) == objectives.Miwae(groups=2)
    assert objectives.Miwae(groups=2) != objectives.Piwae(groups=2)  # same config, other class
    assert objectives.Elbo(free_bits=0.1) != objectives.Elbo(free_bits=0.2)
    assert len({objectives.Miwae(2), objectives.Miwae(2), objectives.Piwae(2),
                objectives.Elbo(0.1)}) == 3
    assert hash(objectives.Ciwae(0.3)) == hash(objectives.Ciwae(0.3))


def test_the_deprecation_points_at_the_users_line_and_names_every_keyword():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        keras_vae.VAE((4, 4, 1), latent_dim=2, hidden_units=(4,), free_bits=0.5,
                      importance_groups=1)  # the line the warning names
    (warning,) = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    # Under `make mutation`, mutmut's trampoline is a frame outside the package
    # between the user's line and the package: the walk stops there.
    if "MUTANT_UNDER_TEST" not in os.environ:
        assert warning.filename == __file__
    assert "free_bits=0.5, importance_groups=1 are deprecated" in str(warning.message)
    assert "objective=keras_vae.objectives.Elbo(free_bits=0.5)" in str(warning.message)


def test_configure_passes_only_what_differs_from_the_defaults():
    assert objectives.configure("miwae", importance_groups=1, free_bits=0.0,
                                ciwae_beta=None) == objectives.Miwae()
    assert objectives.configure("elbo", free_bits=0.2) == objectives.Elbo(free_bits=0.2)
    with pytest.raises(ValueError, match="Unknown objective: 'vimco'"):
        objectives.configure("vimco")
