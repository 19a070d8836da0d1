"""The hierarchical VAE: its bounds against an independent computation.

A model with two one-dimensional latent layers is small enough to
integrate: on a grid over (z_1, z_2), log p(x) = log ∫∫ p(x|z_1) p(z_1|z_2)
p(z_2) dz and the ELBO = ∫∫ q(z|x) [log p(x, z) − log q(z|x)] dz are sums,
computed here in NumPy from the networks' outputs (the densities, the
chain, the precision weighting of the ladder written again here). The
model's ELBO, IWAE bound and importance-sampled log-likelihood must match
them within their Monte-Carlo error, and keep ELBO ≤ IWAE ≤ log p(x).
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import logsumexp

import keras_vae
from keras_vae import evaluation
from keras_vae.distributions import hierarchy, ladder

X = np.array([[1.0, 0.0, 1.0]], dtype="float32")
GRID = np.linspace(-7.0, 7.0, 561)
STEP = GRID[1] - GRID[0]


def _scale(raw):
    return 1e-4 + np.logaddexp(0.0, raw + math.log(math.e - 1.0))


def _normal_log_pdf(z, loc, scale):
    return -0.5 * ((z - loc) / scale) ** 2 - np.log(scale) - 0.5 * math.log(2 * math.pi)


def _link(link, z):
    """A link's (loc, scale) from its raw outputs, for 1-D blocks `z` (n,)."""
    raw = np.asarray(link.raw(z[:, None].astype("float32")), dtype="float64")
    return raw[:, 0], _scale(raw[:, 1])


def tiny_model(inference, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    vae = keras_vae.HierarchicalVAE((3,), latent_dims=(1, 1), inference=inference,
                                    hidden_units=(4,), hierarchy_units=(3,), seed=seed,
                                    **kwargs)
    # Biases away from zero too, so every link and offset matters.
    for weight in vae.trainable_weights:
        weight.assign(np.asarray(weight) + 0.3 * np.random.default_rng(seed)
                      .standard_normal(weight.shape))
    return vae


def grid_log_joint(vae):
    """log p(x, z_1, z_2) on the grid, `(len(GRID) z_1, len(GRID) z_2)`."""
    z1, z2 = np.meshgrid(GRID, GRID, indexing="ij")
    logits = np.asarray(vae.decoder(GRID[:, None].astype("float32")), dtype="float64")
    log_px = np.sum(X * logits - np.logaddexp(0.0, logits), axis=-1)  # (z_1,)
    loc, scale = _link(vae.prior.links[0], GRID)  # p(z_1 | z_2), as functions of z_2
    return (log_px[:, None] + _normal_log_pdf(z1, loc[None, :], scale[None, :])
            + _normal_log_pdf(z2, 0.0, 1.0))


def grid_log_posterior(vae):
    """log q(z_1, z_2 | x) on the grid, by the model's inference."""
    z1, z2 = np.meshgrid(GRID, GRID, indexing="ij")
    params = np.asarray(vae.encoder(X), dtype="float64")[0]
    if vae.inference == "bottom_up":  # q(z_1|x) q(z_2|z_1)
        loc, scale = _link(vae.posterior_family.links[0], GRID)  # functions of z_1
        return (_normal_log_pdf(z1, params[0], _scale(params[1]))
                + _normal_log_pdf(z2, loc[:, None], scale[:, None]))
    # Ladder: q(z_2|x) bottom-up, then q(z_1|z_2, x) ∝ N(μ̂_1, σ̂_1²) p(z_1|z_2).
    up = np.asarray(vae.posterior_family.links[0].raw(params[None, :].astype("float32")))[0]
    prior_loc, prior_scale = _link(vae.prior.links[0], GRID)  # functions of z_2
    precision = _scale(params[1]) ** -2 + prior_scale ** -2
    loc = (params[0] * _scale(params[1]) ** -2 + prior_loc * prior_scale ** -2) / precision
    return (_normal_log_pdf(z2, up[0], _scale(up[1]))
            + _normal_log_pdf(z1, loc[None, :], precision[None, :] ** -0.5))


def integrated_bounds(vae):
    """(log p(x), ELBO) by quadrature on the grid."""
    log_joint, log_q = grid_log_joint(vae), grid_log_posterior(vae)
    log_px = logsumexp(log_joint) + 2 * math.log(STEP)
    q = np.exp(log_q) * STEP ** 2
    assert q.sum() == pytest.approx(1.0, abs=1e-3)  # the grid holds the posterior
    return log_px, float(np.sum(q * (log_joint - log_q)))


@pytest.mark.parametrize("inference", ["bottom_up", "ladder"])
def test_elbo_and_likelihood_match_the_integrals(inference):
    vae = tiny_model(inference, num_samples=20000)
    log_px, elbo = integrated_bounds(vae)
    assert elbo < log_px - 0.05  # the posterior is not exact: a gap to measure
    terms = vae.elbo_terms(X)
    model_elbo = -float(terms.reconstruction[0] + terms.kl[0])
    # 20 000 samples: the Monte-Carlo error is below 0.02 nats here.
    assert model_elbo == pytest.approx(elbo, abs=0.03)
    # Importance sampling from q: 20 000 samples land within 0.04 nats here
    # (seeds 0–2), a little low on average, as the estimator is.
    estimate = evaluation.log_likelihood(vae, X, num_samples=20000, verbose=False)[0]
    assert log_px - 0.06 < estimate < log_px + 0.02
    assert estimate >= model_elbo + 0.2


@pytest.mark.parametrize("inference", ["bottom_up", "ladder"])
def test_iwae_bound_matches_an_independent_estimate(inference):
    """E[log (1/k) Σ w_i] for k = 5: the model's objective on 4000 copies of
    x, against the same expectation sampled here from the grid posterior."""
    k, copies = 5, 4000
    vae = tiny_model(inference, objective="iwae", num_samples=k)
    model_bound = -float(vae.objective.loss(vae, vae.elbo_terms(np.repeat(X, copies, 0))))
    log_joint, log_q = grid_log_joint(vae), grid_log_posterior(vae)
    weights = np.exp(log_q).ravel() / np.exp(log_q).sum()
    rng = np.random.default_rng(1)
    cells = rng.choice(weights.size, size=(copies, k), p=weights)
    # A draw from the grid cell, its log weight log p(x, z) − log q(z|x).
    log_w = (log_joint - log_q).ravel()[cells]
    bounds = logsumexp(log_w, axis=1) - math.log(k)
    error = 4 * bounds.std() / math.sqrt(copies) * math.sqrt(2) + 0.01
    assert model_bound == pytest.approx(bounds.mean(), abs=error)
    log_px, elbo = integrated_bounds(vae)
    assert elbo + 0.02 < model_bound < log_px


def test_the_ladder_merges_by_precision():
    loc, scale = ladder.precision_weighted(np.float32(2.0), np.float32(0.5),
                                           np.float32(3.0), np.float32(1.0))
    # Precisions 4 and 1: loc (2·4 + 3·1) / 5, variance 1/5.
    assert float(loc) == pytest.approx(11 / 5)
    assert float(scale) == pytest.approx(5 ** -0.5)


@pytest.mark.parametrize("inference", ["bottom_up", "ladder"])
def test_encode_gives_the_chain_of_means(inference):
    """`encode`: each layer's loc given the locs generated before it, and its
    scale, from the networks' raw outputs."""
    vae = tiny_model(inference)
    loc, scale = (np.asarray(t, "float64")[0] for t in vae.encode(X))
    params = np.asarray(vae.encoder(X), "float64")[0]
    loc_1, scale_1 = params[0], _scale(params[1])
    if inference == "bottom_up":  # z_1 from the encoder, then q(z_2 | z_1 = loc_1)
        loc_2, scale_2 = (v[0] for v in _link(vae.posterior_family.links[0],
                                              np.array([loc_1])))
        expected = [loc_1, loc_2], [scale_1, scale_2]
    else:  # z_2 from the bottom-up pass, then z_1 merged with p(z_1 | z_2 = loc_2)
        up = np.asarray(vae.posterior_family.links[0].raw(params[None].astype("float32")),
                        "float64")[0]
        loc_2, scale_2 = up[0], _scale(up[1])
        prior_loc, prior_scale = (v[0] for v in _link(vae.prior.links[0], np.array([loc_2])))
        precision = scale_1 ** -2 + prior_scale ** -2
        merged = (loc_1 * scale_1 ** -2 + prior_loc * prior_scale ** -2) / precision
        expected = [merged, loc_2], [precision ** -0.5, scale_2]
    np.testing.assert_allclose(loc, expected[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(scale, expected[1], rtol=1e-4, atol=1e-5)


def test_the_prior_draws_top_down():
    """z_2 = T ε_2, then z_1 = loc(z_2) + scale(z_2) · T ε_1, for the seed's ε."""
    vae = keras_vae.HierarchicalVAE((3,), latent_dims=(2, 1), hidden_units=(4,),
                                    hierarchy_units=(5,), seed=0)
    seed = np.array([0, 7], "int32")
    eps = tf.random.stateless_normal([6, 3], seed=seed).numpy().astype("float64")
    for temperature in (1.0, 0.5):
        z = np.asarray(vae.prior.sample(6, seed=seed, temperature=temperature))
        top = temperature * eps[:, 2:]
        raw = np.asarray(vae.prior.links[0].raw(top.astype("float32")), "float64")
        bottom = raw[:, :2] + _scale(raw[:, 2:]) * temperature * eps[:, :2]
        np.testing.assert_allclose(z, np.concatenate([bottom, top], axis=1),
                                   rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(vae.prior.sample(6, seed=seed),
                               vae.prior.sample(6, seed=seed, temperature=1.0))


@pytest.mark.parametrize("inference", ["bottom_up", "ladder"])
def test_chain_inverse_and_log_determinant(inference):
    """forward then inverse gives ε back; log q by the model equals the
    Gaussian chain's density written out block by block."""
    vae = keras_vae.HierarchicalVAE((3,), latent_dims=(2, 3, 1), inference=inference,
                                    hidden_units=(4,), hierarchy_units=(5,), seed=0)
    posterior = vae.posterior(np.repeat(X, 4, 0))
    eps = np.random.default_rng(0).standard_normal((2, 4, 6)).astype("float32")
    z = vae.posterior_family.reparameterize(posterior, eps)
    chain = posterior.bijector
    np.testing.assert_allclose(chain.inverse(np.asarray(z) + 0.0), eps, atol=1e-4)
    _, scales = chain.transform(np.asarray(z), inverse=True)
    expected = np.sum(_normal_log_pdf(eps, 0.0, 1.0) - np.log(np.asarray(scales)), axis=-1)
    np.testing.assert_allclose(posterior.log_prob(np.asarray(z) + 0.0), expected,
                               rtol=1e-5, atol=1e-4)
    prior_z = np.asarray(vae.prior.sample(5, seed=np.array([0, 1], "int32")))
    prior_eps, prior_scales = vae.prior.bijector().transform(prior_z, inverse=True)
    expected = np.sum(_normal_log_pdf(np.asarray(prior_eps), 0.0, 1.0)
                      - np.log(np.asarray(prior_scales)), axis=-1)
    np.testing.assert_allclose(vae.prior.log_prob(prior_z), expected, rtol=1e-5, atol=1e-4)
    # z_3 (the top) of the prior is its ε: the first block generated.
    np.testing.assert_allclose(np.asarray(prior_eps)[:, 5:], prior_z[:, 5:], atol=1e-6)


def test_decoder_reads_the_bottom_layer():
    vae = keras_vae.HierarchicalVAE((3,), latent_dims=(2, 1), hidden_units=(4,), seed=0)
    z = np.array([[0.3, -0.2, 5.0], [0.3, -0.2, -5.0]], "float32")
    decoded = np.asarray(vae.decode(z))
    np.testing.assert_allclose(decoded[0], decoded[1])  # z_2 does not reach x directly
    expected = 1 / (1 + np.exp(-np.asarray(vae.decoder(z[:, :2]))))
    np.testing.assert_allclose(decoded, expected, rtol=1e-5)


def test_active_units_per_layer(monkeypatch):
    keras.utils.set_random_seed(0)
    vae = keras_vae.HierarchicalVAE((3,), latent_dims=(2, 1), hidden_units=(4,),
                                    hierarchy_units=(3,), seed=0)
    x = np.random.default_rng(0).integers(0, 2, (50, 3)).astype("float32")
    monkeypatch.setattr(evaluation.estimates, "MEAN_SAMPLES", 5000)  # Monte-Carlo error ~1e-3
    layers = evaluation.active_units_per_layer(vae, x, threshold=0.0)
    # E_q[z_1|x] is the first block's loc; E_q[z_2|x] averages z_2 over z_1,
    # here by brute force with NumPy's ε through the chain.
    at_zero = evaluation.posterior_means(vae, x).var(0)  # the chain of locs (ε = 0)
    np.testing.assert_allclose(layers[0][1], at_zero[:2], atol=4e-3)
    eps = np.random.default_rng(1).standard_normal((20000, 50, 3)).astype("float32")
    z = np.asarray(vae.posterior_family.reparameterize(vae.posterior(x), eps), "float64")
    truth = z[..., 2:].mean(axis=0).var(axis=0)
    np.testing.assert_allclose(layers[1][1], truth, atol=1e-3)
    assert abs(at_zero[2] - truth[0]) > 5e-3  # z_2 at ε = 0 would fail the line above
    assert layers[0][1].min() > 0.04
    # Between the two: E_q[z_2|x] varies by 0.011, z_2 at ε = 0 by 0.018.
    counts = [count for count, _ in evaluation.active_units_per_layer(vae, x, threshold=0.015)]
    assert counts == [2, 0]
    # A one-layer model has one layer.
    one = keras_vae.VAE((3,), latent_dim=2, hidden_units=(4,), seed=0)
    assert len(evaluation.active_units_per_layer(one, x)) == 1


def test_refusals_name_the_fix():
    with pytest.raises(ValueError, match="at least two stochastic layers"):
        keras_vae.HierarchicalVAE((3,), latent_dims=(4,))
    with pytest.raises(ValueError, match=r"Received: latent_dims=\(4, 0\)"):
        keras_vae.HierarchicalVAE((3,), latent_dims=(4, 0))
    with pytest.raises(ValueError, match="Unknown inference: 'top_down'"):
        keras_vae.HierarchicalVAE((3,), latent_dims=(2, 1), inference="top_down")
    # Its prior and posterior are its own: it takes neither (issue 35).
    with pytest.raises(TypeError, match="A HierarchicalVAE takes no prior=: its prior is its "
                                        "own chain.*Received prior='vamp'"):
        keras_vae.HierarchicalVAE((3,), latent_dims=(2, 1), inference="ladder", prior="vamp")
    with pytest.raises(TypeError, match="takes no prior=.*Received prior=<StandardNormal"):
        keras_vae.HierarchicalVAE((3,), latent_dims=(2, 1),
                                  prior=keras_vae.priors.StandardNormal())
    with pytest.raises(TypeError, match="takes no posterior=.*Received posterior='diagonal'"):
        keras_vae.HierarchicalVAE((3,), latent_dims=(2, 1), posterior="diagonal")
    with pytest.raises(ValueError, match="its latent_dim is their sum. Remove latent_dim=8"):
        keras_vae.HierarchicalVAE((3,), latent_dims=(2, 1), latent_dim=8)
    with pytest.raises(ValueError, match="makes codes of size 3"):
        hierarchy.HierarchicalPrior((2, 1)).build(4)


def test_a_run_config_takes_latent_dims_or_latent_dim():
    from keras_vae import runs
    from keras_vae.runs import config as config_lib

    def build(**values):
        return runs.build_model(config_lib.resolve({"hidden_units": [4], **values}), (3,))

    vae = build(latent_dims=[2, 1], inference="ladder", hierarchy_units=[3])
    assert (vae.latent_dims, vae.inference, vae.hierarchy_units) == ((2, 1), "ladder", (3,))
    with pytest.raises(ValueError, match=r"Give latent_dims \(\[2, 1\]\) or latent_dim \(5\), "
                                         "not both"):
        build(latent_dims=[2, 1], latent_dim=5)
    with pytest.raises(ValueError, match="inference applies to several stochastic layers"):
        build(inference="ladder")
    with pytest.raises(ValueError, match="hierarchy='bottom_up' cannot be combined with a "
                                         "ConditionalVAE"):
        build(latent_dims=[2, 1], conditional=True, num_classes=3)
