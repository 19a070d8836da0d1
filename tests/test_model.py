"""Networks for several image shapes and the model's public methods."""

import keras
import numpy as np
import pytest
from conftest import small_vae

import keras_vae


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (30, 20, 2)])
@pytest.mark.parametrize("network", ["mlp", "conv"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian_learned_scale"])
def test_networks_fit_any_image_shape(shape, network, likelihood):
    x = np.random.default_rng(0).uniform(size=(8,) + shape).astype("float32")
    vae = keras_vae.VAE(input_shape=shape, latent_dim=4, encoder=network,
                        decoder=network, likelihood=likelihood,
                        hidden_units=(16,), conv_filters=(4, 8))
    vae.compile(optimizer="adam")
    history = vae.fit(x, epochs=1, batch_size=4, verbose=0).history
    assert np.isfinite(history["loss"][0])
    assert vae.decode(np.zeros((3, 4))).shape == (3,) + shape
    assert vae.decoder.output_shape == (None,) + shape[:-1] + (
        vae.likelihood.output_channels(shape[-1]),)


def test_widths_are_configurable():
    vae = keras_vae.VAE(input_shape=(28, 28, 1), latent_dim=5, hidden_units=(64, 32))
    dense = [la.units for la in vae.encoder.layers if isinstance(la, keras.layers.Dense)]
    assert dense == [64, 32, 10]
    dense = [la.units for la in vae.decoder.layers if isinstance(la, keras.layers.Dense)]
    assert dense == [32, 64, 784]
    conv = keras_vae.VAE(input_shape=(32, 32, 3), encoder="conv", decoder="conv",
                         conv_filters=(8, 16, 24))
    filters = [la.filters for la in conv.encoder.layers if isinstance(la, keras.layers.Conv2D)]
    assert filters == [8, 16, 24]


def test_encode_returns_loc_and_positive_scale(small_data):
    vae = small_vae()
    loc, scale = vae.encode(small_data[:5])
    assert loc.shape == scale.shape == (5, 3)
    assert np.all(np.asarray(scale) >= 1e-4)
    # An untrained posterior starts near the prior: scale ≈ softplus(0 + 0.54) ≈ 1.
    assert 0.5 < float(np.mean(scale)) < 1.5


def test_decode_gives_the_bernoulli_mean_in_data_space():
    vae = small_vae()
    z = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    logits = np.asarray(vae.decoder(z))
    np.testing.assert_allclose(vae.decode(z), 1 / (1 + np.exp(-logits)), rtol=1e-5)


def test_sample_is_reproducible_with_a_seed_and_fresh_without():
    vae = small_vae()
    images = np.asarray(vae.sample(16))
    assert images.shape == (16, 6, 6, 1)
    assert images.min() >= 0 and images.max() <= 1
    np.testing.assert_array_equal(vae.sample(4, seed=3), vae.sample(4, seed=3))
    assert not np.allclose(vae.sample(4, seed=3), vae.sample(4, seed=4))
    assert not np.allclose(vae.sample(4), vae.sample(4))
    # Samples decode draws from the prior: the same z drawn by hand matches.
    z = vae.prior.sample(4, seed=np.array([0, 3], "int32"))
    np.testing.assert_allclose(vae.sample(4, seed=3), vae.decode(z), rtol=1e-6)


def test_reconstruct_decodes_the_posterior_mean(small_data):
    vae = small_vae()
    loc, _ = vae.encode(small_data[:6])
    np.testing.assert_allclose(vae.reconstruct(small_data[:6]), vae.decode(loc), rtol=1e-6)


def test_interpolate_walks_the_straight_line(small_data):
    vae = small_vae()
    x_a, x_b = small_data[0], small_data[1]
    path = np.asarray(vae.interpolate(x_a, x_b, steps=5))
    assert path.shape == (5, 6, 6, 1)
    (loc_a, loc_b), _ = vae.encode(small_data[:2])
    np.testing.assert_allclose(path[0], vae.decode(loc_a[None])[0], rtol=1e-5)
    np.testing.assert_allclose(path[-1], vae.decode(loc_b[None])[0], rtol=1e-5)
    middle = (np.asarray(loc_a) + np.asarray(loc_b)) / 2
    np.testing.assert_allclose(path[2], vae.decode(middle[None])[0], rtol=1e-5)


@pytest.mark.long  # minutes of training or a resumed run: make test-long
def test_training_on_mnist_reconstructs_better_than_the_mean(mnist):
    (x, _), (x_test, _) = mnist
    keras.utils.set_random_seed(1)
    vae = keras_vae.VAE(input_shape=(28, 28, 1), latent_dim=16, seed=1)
    vae.compile(optimizer="adam")
    vae.fit(x, epochs=10, batch_size=32, verbose=0, validation_data=(x_test,))
    error = np.mean((np.asarray(vae.reconstruct(x_test)) - x_test) ** 2)
    baseline = np.mean((x.mean(axis=0) - x_test) ** 2)
    assert error < 0.6 * baseline, (error, baseline)
    # Test negative ELBO after 10 short epochs on 2000 images: well below the
    # 543 nats (784 ln 2) of an untrained model.
    assert vae.evaluate(x_test, verbose=0, return_dict=True)["loss"] < 200


def test_image_grid_writes_a_png_of_the_images(tmp_path):
    import matplotlib.image

    images = np.zeros((4, 6, 6, 1), "float32")
    images[1] = 1.0
    path = keras_vae.plotting.image_grid(images, str(tmp_path / "a" / "grid.png"), columns=2)
    picture = matplotlib.image.imread(path)
    assert picture.ndim == 3 and picture.shape[0] > 20 and picture.shape[1] > 20
    grey = picture[..., :3].mean(axis=-1)
    assert grey.max() > 0.9 and grey.min() < 0.1  # the white and black images
    # Row by row on white: the dark images span the grid, and of its four
    # quarters only the top right (image 1, white) is light.
    rows, cols = np.nonzero(grey < 0.5)
    grid = grey[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    half_h, half_w = grid.shape[0] // 2, grid.shape[1] // 2
    quarters = [grid[:half_h, :half_w], grid[:half_h, half_w:],
                grid[half_h:, :half_w], grid[half_h:, half_w:]]
    assert [round(float(q.mean())) for q in quarters] == [0, 1, 0, 0]
    assert abs(grid.shape[0] - grid.shape[1]) <= 2  # square images, square grid
    assert not list(tmp_path.glob("a/*.partial.png"))
    with pytest.raises(ValueError, match=r"\(n, height, width, 1 or 3\).*\(4, 6, 6\)"):
        keras_vae.plotting.image_grid(images[..., 0], str(tmp_path / "b.png"))


class _LazyEncoder(keras.layers.Layer):
    """A user's encoder whose Dense layer makes its weights when first called."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(6)

    def call(self, x):
        return self.dense(keras.ops.reshape(x, (keras.ops.shape(x)[0], -1)))


def _counting_traces(vae):
    """`vae` with its `train_step` counting its traces in the returned list."""
    traces = []
    step = vae.train_step

    def counted(data):
        traces.append(1)
        return step(data)

    vae.train_step = counted
    return traces


def test_fit_traces_its_step_once_and_trains_a_users_lazy_network(small_data):
    # The package's networks exist at construction: the optimizer is built
    # before fit, so tf.function traces the step once (not twice).
    vae = small_vae()
    vae.compile(optimizer="adam")
    traces = _counting_traces(vae)
    before = [w.numpy().copy() for w in vae.trainable_weights]
    vae.fit(small_data, epochs=2, batch_size=32, verbose=0)
    assert len(traces) == 1
    assert int(vae.optimizer.iterations.numpy()) == 4
    assert all(not np.array_equal(a, w.numpy()) for a, w in zip(before, vae.trainable_weights,
                                                                strict=True))
    # A user's network may make its weights only when called: Keras then
    # builds the optimizer itself, and every weight trains.
    with pytest.warns(UserWarning, match="does not have a `build"):
        lazy = small_vae(encoder=_LazyEncoder())
    lazy.compile(optimizer="adam")
    before = lazy.encoder.dense.built
    history = lazy.fit(small_data, epochs=1, batch_size=32, verbose=0).history
    assert not before and lazy.encoder.dense.built and np.isfinite(history["loss"][0])
    # Adam: its iteration and learning rate, and two moments per weight.
    assert len(lazy.optimizer.variables) == 2 + 2 * len(lazy.trainable_weights)


def test_the_loss_trackers_do_not_overflow_under_mixed_float16():
    """Issue 36: a reconstruction over 65 504 nats (8-bit colour before
    training) was summed in float16 and recorded as inf."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        x = np.random.default_rng(0).integers(0, 256, (32, 32, 32, 3)) / 255.0
        vae = keras_vae.VAE((32, 32, 3), latent_dim=4, likelihood="discretized_logistic",
                            hidden_units=(16,))
        vae.compile(optimizer="adam")
        history = vae.fit(x.astype("float32"), batch_size=32, verbose=0).history
    finally:
        keras.mixed_precision.set_global_policy("float32")
    reconstruction = history["reconstruction_loss"][0]
    assert 65_504 < reconstruction < 1e7
    # One step: the loss is the reconstruction plus the KL (weight 1).
    assert history["loss"][0] == pytest.approx(reconstruction + history["kl_loss"][0],
                                               rel=1e-4)
