"""The ELBO's terms against closed forms and NumPy."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_vae
from reference import gaussian_kl

import keras_vae


def test_closed_form_kl_matches_numpy(small_data):
    vae = small_vae(kl_weight=0.5)
    vae.compile(optimizer="adam")
    vae.fit(small_data, epochs=1, batch_size=16, verbose=0)
    loc, scale = (np.asarray(t, "float64") for t in vae.encode(small_data))
    assert scale.std() > 1e-3  # a non-trivial posterior after training
    logs = vae.evaluate(small_data, batch_size=64, verbose=0, return_dict=True)
    want = gaussian_kl(loc, scale).mean()
    np.testing.assert_allclose(logs["kl_loss"], want, rtol=1e-5)


def test_monte_carlo_kl_converges_to_closed_form(small_data):
    exact = small_vae(num_samples=1)
    mc = small_vae(num_samples=4000, use_exact_kl=False)
    mc.set_weights(exact.get_weights())
    for vae in (exact, mc):
        vae.compile(optimizer="adam")
    x = small_data[:4]
    kl_exact = exact.evaluate(x, verbose=0, return_dict=True)["kl_loss"]
    kl_mc = mc.evaluate(x, verbose=0, return_dict=True)["kl_loss"]
    loc, scale = (np.asarray(t, "float64") for t in exact.encode(x))
    np.testing.assert_allclose(kl_exact, gaussian_kl(loc, scale).mean(), rtol=1e-5)
    # Standard error of the 4000-sample mean of log q − log p is ≈ 0.01 here.
    assert abs(kl_mc - kl_exact) < 0.05, (kl_mc, kl_exact)


def test_reconstruction_term_matches_numpy_cross_entropy(small_data):
    # A decoder that ignores z (zero kernel) makes log p(x|z) noise-free.
    vae = small_vae(num_samples=3)
    kernel, bias = vae.decoder.layers[-2].get_weights()
    bias = np.random.default_rng(2).normal(size=bias.shape).astype("float32")
    vae.decoder.layers[-2].set_weights([np.zeros_like(kernel), bias])
    vae.compile(optimizer="adam")
    logs = vae.evaluate(small_data, verbose=0, return_dict=True)
    x = small_data.reshape(len(small_data), -1)
    log_p = -np.logaddexp(0, -bias)
    log_not_p = -np.logaddexp(0, bias)
    want = -(x * log_p + (1 - x) * log_not_p).sum(axis=1).mean()
    np.testing.assert_allclose(logs["reconstruction_loss"], want, rtol=1e-5)


@pytest.mark.parametrize("kl_weight", [0.0, 0.3, 2.0])
def test_loss_is_reconstruction_plus_weighted_kl(small_data, kl_weight):
    vae = small_vae(kl_weight=kl_weight)
    vae.compile(optimizer="adam")
    history = vae.fit(
        small_data, epochs=2, batch_size=16, verbose=0,
        validation_data=(small_data[:32],),
    ).history
    for prefix in ("", "val_"):
        np.testing.assert_allclose(
            history[prefix + "loss"],
            np.add(history[prefix + "reconstruction_loss"],
                   kl_weight * np.asarray(history[prefix + "kl_loss"])),
            rtol=1e-5,
        )
    logs = vae.evaluate(small_data, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(
        logs["reconstruction_loss"] + kl_weight * logs["kl_loss"], rel=1e-5
    )


def test_call_adds_the_weighted_objective_with_add_loss(small_data):
    vae = small_vae(kl_weight=0.25)
    vae(small_data[:8])
    assert len(vae.losses) == 1
    recon = float(vae.reconstruction_tracker.result())
    kl = float(vae.kl_tracker.result())
    assert kl > 0
    assert float(vae.losses[0]) == pytest.approx(recon + 0.25 * kl, rel=1e-6)


def test_reparameterization_gradients_reach_the_encoder(small_data):
    # With kl_weight = 0 the encoder affects the loss only through z = μ + σ·ε.
    vae = small_vae(kl_weight=0.0)
    with tf.GradientTape() as tape:
        vae(small_data)
        loss = vae.losses[0]
    grads = tape.gradient(loss, vae.encoder.trainable_weights)
    assert all(g is not None for g in grads)
    assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def test_num_samples_averages_over_draws(small_data):
    # The variance of the reconstruction estimate falls roughly as 1/V.
    def spread(v):
        vae = small_vae(num_samples=v, init_seed=3)
        values = []
        for _ in range(40):
            vae(small_data[:1])
            values.append(float(vae.losses[0]))
        return np.var(values)

    assert spread(16) < spread(1) / 4


def test_kl_weight_changes_during_fit_without_retracing(small_data):
    vae = small_vae()
    traces = []
    original_call = vae.call

    def counting_call(*args, **kwargs):
        traces.append(1)  # runs only while tracing inside tf.function
        return original_call(*args, **kwargs)

    vae.call = counting_call
    warmup = keras_vae.callbacks.KLWarmup(epochs=4)
    vae.compile(optimizer="adam")
    history = vae.fit(small_data, epochs=4, batch_size=16, verbose=0,
                      callbacks=[warmup]).history
    weights = [warmup.weight_at(e) for e in range(4)]
    assert weights == [0.0, 0.25, 0.5, 0.75]
    np.testing.assert_allclose(
        history["loss"],
        np.add(history["reconstruction_loss"], np.multiply(weights, history["kl_loss"])),
        rtol=1e-5,
    )
    assert len(traces) <= 2  # the first step's trace(s), never one per epoch
    assert float(vae.kl_weight) == 0.75


@pytest.mark.parametrize("optimizer", ["adagrad", "rmsprop", "adam"])
def test_each_optimizer_of_the_notes_lowers_the_loss(mnist, optimizer):
    (x, _), _ = mnist
    keras.utils.set_random_seed(0)
    vae = keras_vae.VAE(input_shape=(28, 28, 1), latent_dim=8, hidden_units=(128,),
                        seed=0)
    opt = keras.optimizers.get({"class_name": optimizer,
                                "config": {"learning_rate": 0.01}})
    vae.compile(optimizer=opt)
    before = vae.evaluate(x, verbose=0, return_dict=True)["loss"]
    vae.fit(x, epochs=2, batch_size=100, verbose=0)
    after = vae.evaluate(x, verbose=0, return_dict=True)["loss"]
    assert after < before - 100, (optimizer, before, after)


@pytest.mark.long  # minutes of training or a resumed run: make test-long
def test_xla_matches_the_plain_graph(mnist):
    # XLA draws other ε from the same seed, so compare the deterministic KL
    # exactly and the reconstruction term averaged over many draws.
    (x, _), _ = mnist
    plain = keras_vae.VAE(input_shape=(28, 28, 1), latent_dim=8, num_samples=200)
    xla = keras_vae.VAE(input_shape=(28, 28, 1), latent_dim=8, num_samples=200)
    xla.set_weights(plain.get_weights())
    plain.compile(optimizer="adam", jit_compile=False)
    xla.compile(optimizer="adam", jit_compile=True)
    a = plain.evaluate(x[:200], verbose=0, return_dict=True)
    b = xla.evaluate(x[:200], verbose=0, return_dict=True)
    assert b["kl_loss"] == pytest.approx(a["kl_loss"], rel=1e-5)
    assert b["reconstruction_loss"] == pytest.approx(a["reconstruction_loss"], rel=2e-3)
    xla.num_samples = plain.num_samples = 1
    before = b["loss"]
    history = xla.fit(x, epochs=2, batch_size=100, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert xla.evaluate(x, verbose=0, return_dict=True)["loss"] < before - 50
