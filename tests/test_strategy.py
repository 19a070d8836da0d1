"""MirroredStrategy on two logical CPUs gives the one-device results."""

import numpy as np
import tensorflow as tf
from conftest import small_vae

from keras_vae.training import replicas


def _trained(small_data, strategy=None):
    scope = strategy.scope() if strategy else tf.distribute.get_strategy().scope()
    with scope:
        vae = small_vae(num_samples=2)
        vae.compile(optimizer="adam")
    history = vae.fit(small_data, epochs=3, batch_size=32, shuffle=False, verbose=0)
    return vae, history.history


def test_two_replicas_match_one_device(small_data, strategy):
    single, single_history = _trained(small_data)
    mirrored, mirrored_history = _trained(small_data, strategy)
    assert mirrored.distribute_strategy.num_replicas_in_sync == 2
    for key in ("loss", "reconstruction_loss", "kl_loss"):
        np.testing.assert_allclose(mirrored_history[key], single_history[key], rtol=1e-5)
    for a, b in zip(single.get_weights(), mirrored.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_replicas_draw_different_noise(strategy):
    with strategy.scope():
        vae = small_vae(latent_dim=4)
    per_replica = strategy.run(lambda: replicas.noise(vae, 5))
    first, second = (np.asarray(t) for t in strategy.experimental_local_results(per_replica))
    assert first.shape == second.shape == (1, 5, 4)
    assert np.abs(first - second).min() > 0  # no value shared between replicas
    # Together they are the one-device draw of the whole global batch.
    single = small_vae(latent_dim=4)
    np.testing.assert_allclose(
        np.concatenate([first, second], axis=1), np.asarray(replicas.noise(single, 10))
    )
