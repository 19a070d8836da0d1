"""Saving and reloading with keras.models.load_model and no custom_objects."""

import keras
import numpy as np
from conftest import small_vae

import keras_vae


def test_round_trip_keeps_config_outputs_and_optimizer(tmp_path, small_data):
    vae = small_vae(likelihood=keras_vae.likelihoods.Gaussian(scale=0.2), kl_weight=0.5)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    vae.fit(small_data, epochs=2, batch_size=16, verbose=0)
    vae.kl_weight = 0.75
    path = tmp_path / "vae.keras"
    vae.save(path)

    again = keras.models.load_model(path)
    assert type(again) is keras_vae.VAE
    assert again.get_config() == vae.get_config()
    assert isinstance(again.likelihood, keras_vae.likelihoods.Gaussian)
    assert again.likelihood.scale == 0.2
    assert float(again.kl_weight) == 0.75
    z = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    np.testing.assert_array_equal(again.decode(z), vae.decode(z))
    # The optimizer state survives: same step count and moment estimates.
    assert int(again.optimizer.iterations) == int(vae.optimizer.iterations) == 8
    for a, b in zip(again.optimizer.variables, vae.optimizer.variables, strict=True):
        np.testing.assert_array_equal(a, b)
    again.fit(small_data, epochs=1, batch_size=16, verbose=0)
    assert int(again.optimizer.iterations) == 12


def test_user_networks_round_trip(tmp_path, small_data):
    encoder = keras.Sequential(
        [keras.layers.Flatten(), keras.layers.Dense(6)], name="my_encoder"
    )
    decoder = keras.Sequential(
        [keras.layers.Dense(36), keras.layers.Reshape((6, 6, 1))], name="my_decoder"
    )
    vae = small_vae(encoder=encoder, decoder=decoder)
    vae.compile(optimizer="adam")
    vae.fit(small_data, epochs=1, batch_size=32, verbose=0)
    vae.save(tmp_path / "custom.keras")
    again = keras.models.load_model(tmp_path / "custom.keras")
    assert again.encoder.name == "my_encoder"
    z = np.ones((2, 3), "float32")
    np.testing.assert_array_equal(again.decode(z), vae.decode(z))
