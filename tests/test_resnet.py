"""The residual networks (`encoder="resnet"`, `decoder="resnet"`): shapes for
image sizes from 16 to 256 and any channel count, their initialisation,
training under mixed precision and XLA, saving, the run option, and a
colour decoder with the logistic mixture exported to LiteRT."""

import json
import math

import keras
import numpy as np
import pytest
from conftest import dynamic_dimensions

import keras_vae
from keras_vae import _quiet, edge, export, networks
from keras_vae.distributions.logistic_mixture import DiscretizedLogisticMixture
from keras_vae.distributions.neighbour_mixture import AutoregressiveLogisticMixture
from keras_vae.models import resnet


@pytest.mark.parametrize("shape", [(16, 16, 1), (17, 23, 3), (64, 64, 3), (100, 37, 4),
                                   (256, 256, 3), (31, 256, 2)])
@pytest.mark.parametrize("widths", [(4,), (4, 8, 8)])
def test_the_networks_fit_any_image_size_and_channel_count(shape, widths):
    encoder = resnet.resnet_encoder(shape, 10, widths, 1, "silu")
    decoder = resnet.resnet_decoder(3, shape[:2] + (5 * shape[-1],), widths, 1, "silu")
    assert encoder.output_shape == (None, 10)
    assert decoder.output_shape == (None,) + shape[:2] + (5 * shape[-1],)
    # One downsampling per stage, rounded up where a side is odd.
    last = encoder.get_layer(f"stage{len(widths) - 1}_down").output.shape
    side = 2 ** len(widths)
    assert last[1:] == (math.ceil(shape[0] / side), math.ceil(shape[1] / side), widths[-1])
    residual = [layer for layer in encoder.layers if isinstance(layer, keras.layers.Add)]
    assert len(residual) == len(widths)


def test_a_model_on_colour_images_trains_and_decodes_at_any_size():
    for shape in ((16, 16, 3), (20, 18, 1)):
        vae = keras_vae.VAE(shape, latent_dim=4, encoder="resnet", decoder="resnet",
                            conv_filters=(4, 8), likelihood="discretized_logistic_mixture")
        x = np.random.default_rng(0).integers(0, 256, (8,) + shape) / 255.0
        vae.compile(optimizer="adam")
        assert np.isfinite(vae.fit(x.astype("float32"), batch_size=4, verbose=0)
                           .history["loss"][0])
        assert np.asarray(vae.decode(np.zeros((2, 4), "float32"))).shape == (2,) + shape


def _output_std(blocks, he_everywhere=False):
    """The std of the last block's output for unit-variance inputs."""
    keras.utils.set_random_seed(0)
    encoder = resnet.resnet_encoder((16, 16, 8), 8, (32,), blocks, "relu")
    if he_everywhere:  # every block's last convolution re-initialised at scale 1
        for layer in encoder.layers:
            if layer.name.endswith("_conv2"):
                layer.kernel.assign(np.random.default_rng(1).normal(
                    0, math.sqrt(2.0 / (9 * 32)), layer.kernel.shape))
    trunk = keras.Model(encoder.input, encoder.get_layer(f"stage0_block{blocks - 1}_add").output)
    x = np.random.default_rng(0).normal(size=(16, 16, 16, 8)).astype("float32")
    return float(np.std(np.asarray(trunk(x))))


def test_the_last_convolution_of_each_block_starts_scaled_by_one_over_root_n():
    """VDVAE's initialisation: the skip path dominates at the start, so the
    activations keep their scale with depth; He initialisation throughout
    (scale 1) lets them grow with every block."""
    encoder = resnet.resnet_encoder((16, 16, 3), 8, (32, 32), 4, "relu")
    fan_in = 9 * 32
    for name, want in (("stage1_block3_conv1", math.sqrt(2 / fan_in)),
                       ("stage1_block3_conv2", math.sqrt(2 / fan_in) / math.sqrt(8))):
        kernel = np.asarray(encoder.get_layer(name).kernel)
        assert np.std(kernel) == pytest.approx(want, rel=0.05)
    scaled = [_output_std(blocks) for blocks in (1, 16)]
    unscaled = [_output_std(blocks, he_everywhere=True) for blocks in (1, 16)]
    assert scaled[1] / scaled[0] < 2.0
    assert unscaled[1] / unscaled[0] > 2 * scaled[1] / scaled[0]


@pytest.mark.parametrize("policy,jit,batch", [
    pytest.param("mixed_float16", False, 16, marks=pytest.mark.long),  # make test-long
    pytest.param("float32", True, 16, marks=pytest.mark.long),
    ("float32", False, 256)])
def test_resnet_trains_under_mixed_precision_xla_and_batch_sizes(policy, jit, batch):
    keras.mixed_precision.set_global_policy(policy)
    try:
        vae = keras_vae.VAE((8, 8, 3), latent_dim=4, encoder="resnet", decoder="resnet",
                            conv_filters=(8, 8), likelihood="discretized_logistic_mixture")
        vae.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=jit)
        # 8+ steps: mixed_float16's loss scaling skips the first steps that overflow.
        losses = vae.fit(smooth_images(max(96, 2 * batch)), epochs=4, batch_size=batch,
                         verbose=0).history["loss"]
        assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
        assert all(np.all(np.isfinite(np.asarray(w))) for w in vae.weights)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def smooth_images(n):
    """Colour gradients with random directions and offsets, on 256 levels."""
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(np.linspace(0, 1, 8), np.linspace(0, 1, 8)), -1)
    slopes = rng.uniform(-0.5, 0.5, (n, 1, 1, 2, 3))
    x = rng.uniform(0.2, 0.8, (n, 1, 1, 3)) + (grid[None, ..., None] * slopes).sum(3)
    return (np.round(255 * np.clip(x, 0, 1)) / 255).astype("float32")


def test_blocks_are_an_option_that_saves_and_loads(tmp_path):
    from keras_vae.runs import config, model_options

    vae = keras_vae.VAE((16, 16, 1), latent_dim=2, encoder=networks.ResNet(blocks=3),
                        decoder="resnet", conv_filters=(4,))
    adds = [la for la in vae.encoder.layers if isinstance(la, keras.layers.Add)]
    assert len(adds) == 3
    vae.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert len([la for la in loaded.encoder.layers if isinstance(la, keras.layers.Add)]) == 3
    z = np.ones((2, 2), "float32")
    np.testing.assert_allclose(loaded.decode(z), vae.decode(z), rtol=1e-6)
    kwargs = model_options.model_kwargs(config.resolve(
        {"encoder": "resnet", "decoder": "resnet", "resnet_blocks": 4}))
    assert kwargs["encoder"].blocks == 4 and kwargs["decoder"].blocks == 4
    with pytest.raises(ValueError, match="resnet_blocks applies to the resnet networks, and "
                                         "this run's are 'mlp' and 'mlp'"):
        model_options.model_kwargs(config.resolve({"resnet_blocks": 4}))
    with pytest.raises(ValueError, match=r"Expected an integer >= 1 for blocks. Received: blocks=0"):
        networks.ResNet(blocks=0)
    with pytest.raises(ValueError, match=r"'resnet' networks need images of shape \(height, "
                                         r"width, channels\). Received: shape=\(12,\)"):
        keras_vae.VAE((12,), encoder="resnet", decoder="mlp")


@pytest.mark.long  # a colour model converted to LiteRT (8×8×1 resnet cells run in make test)
@pytest.mark.parametrize("likelihood", [DiscretizedLogisticMixture(4),
                                        AutoregressiveLogisticMixture(4, neighbours=4)],
                         ids=["factorised", "autoregressive"])
def test_a_colour_resnet_decoder_exports_to_litert_and_the_web_page(likelihood, tmp_path):
    """The coupled mixture's mean over 3 channels (the autoregressive one's:
    94 passes over the image), in the fixed-shape, builtin-only LiteRT file
    of the web page, gives the Keras images."""
    vae = keras_vae.VAE((32, 32, 3), latent_dim=6, encoder="resnet", decoder="resnet",
                        conv_filters=(8, 16), likelihood=likelihood)
    z = np.random.default_rng(0).standard_normal((4, 6)).astype("float32")
    want = np.asarray(vae.decode(z))
    with _quiet.converter_logs_hidden():
        export.export_web(vae, str(tmp_path), quantize=("none",), batch_sizes=(4,))
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["image_shape"] == [32, 32, 3] and meta["variants"][0]["file"] == \
        "vae_float32.tflite"
    path = str(tmp_path / "vae_float32.tflite")
    assert not dynamic_dimensions(path)
    generator = edge.LiteRTGenerator(path)
    np.testing.assert_allclose(generator.decode(z), want, rtol=1e-5, atol=1e-5)
    drawn = generator.sample(4)
    assert drawn.shape == (4, 32, 32, 3) and 0 <= drawn.min() and drawn.max() <= 1
