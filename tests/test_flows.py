"""The inverse autoregressive flow posterior against independent computations:
its log-density against a brute-force change of variables (the Jacobian by
automatic differentiation, its determinant by NumPy), the density's
integral, each step's triangular Jacobian, and the model around it."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_vae
from reference import log_normal

from keras_vae import evaluation, objectives
from keras_vae.distributions import flows


def _flow(latent_dim=3, steps=2, context_size=4, seed=0):
    """A built flow whose output weights are large enough that every step
    is far from the identity (the initial ones are near it)."""
    keras.utils.set_random_seed(seed)
    flow = flows.InverseAutoregressiveFlow(steps=steps, hidden_units=8,
                                           context_size=context_size)
    flow.build(latent_dim)
    rng = np.random.default_rng(seed)
    for network in flow.networks:
        network.out_kernel.assign(rng.normal(0, 0.7, network.out_kernel.shape))
        network.out_bias.assign(rng.normal(0, 0.3, network.out_bias.shape))
    return flow


def _params(flow, batch=5, seed=1):
    d = flow.latent_dim
    return tf.constant(np.random.default_rng(seed).normal(
        0, 0.8, (batch, 2 * d + flow.context_size)).astype("float32"))


def test_made_masks_let_each_output_see_only_the_dimensions_before_it():
    for reverse in (False, True):
        to_hidden, to_output = flows.made_masks(4, 10, reverse)
        reach = (to_hidden @ to_output[:, :4]) > 0  # reach[j, i]: input j → output i
        order = [4, 3, 2, 1] if reverse else [1, 2, 3, 4]
        want = np.array([[order[j] < order[i] for i in range(4)] for j in range(4)])
        np.testing.assert_array_equal(reach, want)
        np.testing.assert_array_equal(to_output[:, 4:], to_output[:, :4])  # m and s alike


def test_the_made_network_against_numpy():
    flow = _flow(latent_dim=3, context_size=4)
    network = flow.networks[1]  # the reversed order
    for weight in (network.kernel, network.context_kernel, network.bias):
        weight.assign(np.random.default_rng(5).normal(0, 0.5, weight.shape))
    rng = np.random.default_rng(6)
    z, h = rng.normal(size=(7, 5, 3)), rng.normal(size=(5, 4))  # (samples, batch, d), (batch, c)
    m, s = network(z.astype("float32"), h.astype("float32"))
    to_hidden, to_output = flows.made_masks(3, 8, reverse=True)
    weights = [np.asarray(w) for w in (network.kernel, network.context_kernel, network.bias,
                                       network.out_kernel, network.out_bias)]
    hidden = np.maximum(z @ (weights[0] * to_hidden) + h @ weights[1] + weights[2], 0)
    out = hidden @ (weights[3] * to_output) + weights[4]
    np.testing.assert_allclose(m, out[..., :3], atol=1e-5)
    np.testing.assert_allclose(s, out[..., 3:], atol=1e-5)


def test_a_new_flow_starts_near_a_fixed_gate():
    """Small output weights at first: m ≈ 0 and s ≈ 0, so each step starts
    as z_t ≈ sigmoid(1) · z_{t−1}, whatever the code and context."""
    keras.utils.set_random_seed(0)
    flow = flows.InverseAutoregressiveFlow(steps=1, hidden_units=64, context_size=4)
    flow.build(3)
    network = flow.networks[0]
    assert float(np.std(network.out_kernel)) == pytest.approx(0.01, rel=0.2)
    assert np.abs(network.bias).max() == 0 and np.abs(network.out_bias).max() == 0
    kernel_std = float(np.std(network.kernel))  # Glorot uniform: √(2 / (fan_in + fan_out))
    assert kernel_std == pytest.approx(np.sqrt(2 / (3 + 64)), rel=0.2)
    z = np.random.default_rng(1).normal(size=(4, 3)).astype("float32")
    step = flows.IAFStep(network, np.ones((4, 4), "float32"))
    gate = 1 / (1 + np.exp(-flows.GATE_BIAS))
    np.testing.assert_allclose(step.forward(z), gate * z, atol=0.1)


def test_each_step_has_a_triangular_jacobian_with_the_gates_on_its_diagonal():
    flow = _flow(steps=4)  # the order is reversed from one step to the next
    params = _params(flow)
    context = params[:, 6:]
    z = tf.constant(np.random.default_rng(2).normal(size=(5, 3)).astype("float32"))
    for t, network in enumerate(flow.networks):
        step = flows.IAFStep(network, context)
        with tf.GradientTape() as tape:
            tape.watch(z)
            y = step.forward(z)
        jacobian = tape.batch_jacobian(y, z).numpy()  # [b, i, j] = ∂y_i/∂z_j
        strict = np.triu(np.ones((3, 3)), 1) if t % 2 == 0 else np.tril(np.ones((3, 3)), -1)
        assert np.abs(jacobian * strict).max() == 0.0, t
        assert np.abs(jacobian * (1 - strict - np.eye(3))).max() > 1e-3  # not diagonal
        m, s = network(z, context)
        np.testing.assert_allclose(np.diagonal(jacobian, axis1=1, axis2=2),
                                   tf.sigmoid(s + flows.GATE_BIAS), rtol=1e-5)


def test_log_density_matches_a_brute_force_change_of_variables():
    flow = _flow()
    params = _params(flow)
    posterior = flow.distribution(params)
    eps = tf.constant(np.random.default_rng(3).normal(size=(5, 3)).astype("float32"))
    loc = params[:, :3].numpy()
    # σ = 1e-4 + softplus(raw + softplus⁻¹(1)), as every posterior's scale.
    scale = 1e-4 + np.log1p(np.exp(params[:, 3:6].numpy() + np.log(np.e - 1)))
    z0 = tf.constant((loc + scale * eps.numpy()).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(z0)
        z = posterior.bijector.forward(z0)
    jacobian = tape.batch_jacobian(z, z0).numpy().astype("float64")
    want = log_normal(z0.numpy(), loc, scale) - np.log(
        np.abs(np.linalg.det(jacobian)))
    np.testing.assert_allclose(flow.reparameterize(posterior, eps), z, atol=1e-6)
    np.testing.assert_allclose(posterior.log_prob(z), want, atol=2e-4)
    # A fresh distribution has no cached inverse: the sequential inverse
    # must find z_0 again.
    np.testing.assert_allclose(flow.distribution(params).log_prob(z.numpy()), want, atol=2e-4)


def test_the_density_integrates_to_one():
    flow = _flow(latent_dim=2, context_size=3)
    posterior = flow.distribution(_params(flow, batch=1))
    axis = np.linspace(-4, 4, 201)  # holds all but about 1e-5 of this flow's mass
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 1, 2)
    log_density = posterior.log_prob(grid.astype("float32")).numpy()
    assert np.isfinite(log_density).all()
    assert np.sum(np.exp(log_density)) * (axis[1] - axis[0]) ** 2 == pytest.approx(1.0, abs=1e-3)


def test_a_vae_with_the_flow_trains_saves_and_estimates_its_kl_by_monte_carlo(
        tmp_path, small_data):
    vae = small_vae(posterior="iaf", latent_dim=3)
    names = [w.path for w in vae.trainable_weights]
    assert sum("iaf_step" in n for n in names) == 2 * 5  # two steps, five weights each
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = [w.numpy().copy() for w in vae.posterior_family.trainable_weights]
    history = vae.fit(small_data, epochs=2, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    after = vae.posterior_family.trainable_weights
    assert all(not np.allclose(a, b.numpy()) for a, b in zip(before, after, strict=True))
    # The model's KL term is log q(z|x) − log p(z) at its own draw of z.
    terms = vae.elbo_terms(small_data[:8])
    want = terms.posterior.log_prob(terms.z) - vae.prior.log_prob(terms.z)
    np.testing.assert_allclose(terms.kl, np.mean(want.numpy(), axis=0), rtol=1e-5)
    vae.save(tmp_path / "iaf.keras")
    again = keras.models.load_model(tmp_path / "iaf.keras")
    z = terms.z.numpy()
    np.testing.assert_allclose(again.posterior(small_data[:8]).log_prob(z),
                               vae.posterior(small_data[:8]).log_prob(z), atol=1e-5)


def test_the_importance_sampled_likelihood_bounds_the_elbo_with_the_flow(small_data):
    vae = small_vae(posterior="iaf", latent_dim=2)
    vae.compile(optimizer="adam")
    vae.fit(small_data, epochs=1, batch_size=16, verbose=0)
    x = small_data[:16]
    log_px = evaluation.log_likelihood(vae, x, num_samples=500, verbose=False).mean()
    elbo = -np.mean([evaluation.negative_elbo(vae, x).mean() for _ in range(20)])
    assert elbo - 0.05 <= log_px < elbo + 5  # a bound below, and a close one


def test_active_units_take_the_flows_mean_not_its_value_at_zero_noise(small_data):
    vae = small_vae(posterior="iaf", latent_dim=3)
    rng = np.random.default_rng(0)
    for network in vae.posterior_family.networks:  # far from the identity
        network.out_kernel.assign(rng.normal(0, 0.7, network.out_kernel.shape))
        network.out_bias.assign(rng.normal(0, 0.3, network.out_bias.shape))
    # E_q[z|x] by brute force: the flow of μ + σ ε for 20 000 of NumPy's ε.
    eps = rng.standard_normal((20000, len(small_data), 3)).astype("float32")
    z = vae.posterior_family.reparameterize(vae.posterior(small_data), eps)
    want = np.asarray(z, "float64").mean(axis=0).var(axis=0)
    count, variances = evaluation.active_units(vae, small_data, threshold=0.018)
    np.testing.assert_allclose(variances, want, atol=1.5e-3)
    assert count == int(np.sum(want > 0.018)) == 1
    at_zero_noise = np.asarray(vae.encode(small_data)[0]).var(axis=0)  # not the mean
    assert np.max(np.abs(at_zero_noise - want)) > 5e-3


@pytest.mark.parametrize("options, message", [
    ({"objective": objectives.Elbo(free_bits=1.0)},
     "the KL of an inverse autoregressive flow posterior does not split"),
    ({"prior": "vamp"}, "the VampPrior's density is a mixture of the posteriors"),
])
def test_options_the_flow_cannot_take_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        small_vae(posterior="iaf", **options)
