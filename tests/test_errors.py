"""Bad input gets a clear ValueError, never NaN weights."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import small_vae


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"latent_dim": 0}, r"integer >= 1 for latent_dim. Received: latent_dim=0"),
        ({"latent_dim": 2.5}, r"integer for latent_dim. Received: latent_dim=2.5"),
        ({"num_samples": 0}, r"num_samples. Received: num_samples=0"),
        ({"kl_weight": -1.0}, r"number >= 0 for kl_weight. Received: kl_weight=-1.0"),
        ({"encoder": "transformer"}, r"Unknown encoder: 'transformer'. Expected one of \['mlp', 'conv', 'resnet'\]"),
        ({"decoder": "gru"}, r"Unknown decoder: 'gru'. Expected one of \['mlp', 'conv', 'resnet'\]"),
        ({"likelihood": "poisson"}, r"Unknown likelihood: 'poisson'. Expected one of \['autoregressive_logistic_mixture', 'bernoulli', 'continuous_bernoulli', 'discretized_logistic', 'discretized_logistic_mixture', 'gaussian', 'gaussian_learned_scale'\]"),
        ({"prior": "cauchy"}, r"Unknown prior: 'cauchy'. Expected one of \['learnable_gaussian', 'mixture_of_gaussians', 'standard_normal', 'vamp'\]"),
        ({"input_shape": (28, 0)}, r"positive integers for input_shape"),
        ({"hidden_units": ()}, r"positive integers for hidden_units"),
    ],
)
def test_invalid_constructor_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_vae(**kwargs)


def test_conv_needs_image_shaped_input():
    with pytest.raises(ValueError, match=r"\(height, width, channels\). Received: shape=\(36,\)"):
        small_vae(input_shape=(36,), encoder="conv")


def test_wrong_input_shape_names_both_shapes(small_data):
    vae = small_vae()
    vae.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"shape \(batch, 6, 6, 1\).*x.shape=\(64, 6, 6\)"):
        vae.fit(small_data[..., 0], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"x.shape=\(64, 36\)"):
        vae.encode(small_data.reshape(64, 36))
    with pytest.raises(ValueError, match=r"z of shape \(batch, 3\).*z.shape=\(2, 4\)"):
        vae.decode(np.zeros((2, 4)))


def test_a_dataset_of_the_wrong_shape_is_refused(small_data):
    vae = small_vae()
    vae.compile(optimizer="adam")
    dataset = tf.data.Dataset.from_tensor_slices(small_data.reshape(64, 36)).batch(8)
    with pytest.raises(ValueError, match=r"x.shape=\(None, 36\)"):
        vae.fit(dataset, epochs=1, verbose=0)


def test_bernoulli_rejects_data_outside_unit_interval(small_data):
    vae = small_vae()
    vae.compile(optimizer="adam")
    before = vae.get_weights()
    with pytest.raises(ValueError, match=r"needs data in \[0, 1\]. Received x with minimum 0 and maximum 255.*divide by 255.*likelihood='gaussian'"):
        vae.fit(np.round(small_data * 255), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"Received validation_data with minimum -0.99"):
        vae.fit(small_data, validation_data=(small_data - 1,), epochs=1, verbose=0)
    for a, b in zip(before, vae.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # The Gaussian likelihood takes any finite values.
    gaussian = small_vae(likelihood="gaussian")
    gaussian.compile(optimizer="adam")
    gaussian.fit(small_data * 255, epochs=1, verbose=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_arrays_is_refused_before_training(small_data, bad):
    vae = small_vae(likelihood="gaussian")
    vae.compile(optimizer="adam")
    x = small_data.copy()
    x[3, 2, 1, 0] = bad
    with pytest.raises(ValueError, match=r"1 NaN or infinite values \(the first at index \(3, 2, 1, 0\)\)"):
        vae.fit(x, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        vae.evaluate(x, verbose=0)
    assert all(np.isfinite(w).all() for w in vae.get_weights())


def test_nan_in_a_dataset_stops_training_before_the_weights_change(small_data):
    vae = small_vae()
    vae.compile(optimizer="adam")
    before = vae.get_weights()
    x = small_data.copy()
    x[0, 0, 0, 0] = np.nan
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(16)
    with pytest.raises(tf.errors.InvalidArgumentError, match="x contains NaN or infinite"):
        vae.fit(dataset, epochs=1, verbose=0)
    for a, b in zip(before, vae.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_out_of_range_values_in_a_dataset_are_refused(small_data):
    vae = small_vae()
    vae.compile(optimizer="adam")
    labels = np.zeros(64)
    dataset = tf.data.Dataset.from_tensor_slices((small_data * 2, labels)).batch(16)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"needs data in \[0, 1\]"):
        vae.fit(dataset, epochs=1, verbose=0)


def test_sample_and_interpolate_check_their_counts():
    vae = small_vae()
    with pytest.raises(ValueError, match="integer >= 1 for num_samples. Received: num_samples=0"):
        vae.sample(0)
    with pytest.raises(ValueError, match="integer >= 2 for steps. Received: steps=1"):
        vae.interpolate(np.zeros((6, 6, 1)), np.ones((6, 6, 1)), steps=1)


def test_user_networks_with_wrong_output_sizes_are_explained(small_data):
    import keras

    encoder = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(5)])
    with pytest.raises(ValueError, match=r"encoder must output 6 values per example \(the parameters of the DiagonalGaussian posterior with latent_dim 3\)"):
        small_vae(encoder=encoder).encode(small_data)
    decoder = keras.Sequential([keras.layers.Dense(35)])
    vae = small_vae(decoder=decoder, likelihood="gaussian_learned_scale")
    with pytest.raises(ValueError, match=r"decoder must output 72 values.*2 parameters of the 'GaussianLearnedScale'"):
        vae.decode(np.zeros((2, 3)))
