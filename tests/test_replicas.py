"""keras_vae.training.replicas: every example its own noise on uneven splits,
and free bits over the global batch under MirroredStrategy."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import small_vae

import keras_vae
from keras_vae import objectives
from keras_vae.training import replicas


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
            vae = small_vae(objective=objectives.Elbo(free_bits=0.5), num_samples=2)
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
        vae = small_vae(objective=objectives.Elbo(free_bits=0.4), latent_dim=3)
    per_dim = np.asarray(vae.kl_per_dimension(x), "float64")
    global_mean = per_dim.mean(axis=0)
    batch = next(iter(strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(x).batch(32))))

    def loss(b):
        with replicas.global_batch(vae, b):
            share, mean = replicas.kl_share_and_mean(vae, vae.kl_per_dimension(b))
            return keras_vae.objectives.free_bits_kl(share, mean, vae.objective.free_bits)

    parts = [np.asarray(t) for t in strategy.experimental_local_results(
        strategy.run(loss, args=(batch,)))]
    # Keras divides each replica's add_loss by 2 and sums: the global value.
    want = np.maximum(global_mean, 0.4).sum()
    assert sum(parts) / 2 == pytest.approx(want, rel=1e-5)

