"""`keras_vae.evaluation.decoding`: log p(x|z) in float32 and with bfloat16 products,
against NumPy, with every likelihood and model kind, and its refusals."""

import json
import os
import re

import keras
import ml_dtypes
import numpy as np
import pytest
from conftest import has_bfloat16_units, small_vae

import keras_vae
from keras_vae import cli, evaluation
from keras_vae.evaluation import decoding


def _bf16(values):
    """Round to bfloat16 (to nearest even, as oneDNN does) and back to float64."""
    return np.asarray(values, np.float32).astype(ml_dtypes.bfloat16).astype(np.float64)


def _numpy_logits(vae, z, rounded):
    """The MLP decoder written again: products of bfloat16-rounded inputs and
    kernels, rounded to bfloat16 (`rounded`), or plain float64; bias and
    activation after the product."""
    keep = _bf16 if rounded else (lambda a: np.asarray(a, np.float64))
    dense = [layer for layer in vae.decoder.layers if isinstance(layer, keras.layers.Dense)]
    h = np.asarray(z, np.float64).reshape(-1, z.shape[-1])
    for i, layer in enumerate(dense):
        pre = keep(keep(h) @ keep(layer.kernel.numpy())) + layer.bias.numpy()
        h = np.tanh(pre) if i < len(dense) - 1 else pre
    return h.reshape(z.shape[:-1] + (-1,))


def _bernoulli_log_prob(logits, x):
    x = x.reshape(1, len(x), -1)
    return np.sum(x * logits - np.logaddexp(0.0, logits), axis=-1)


@pytest.fixture(scope="module")
def bernoulli_case():
    vae = small_vae(hidden_units=(16, 12), activation="tanh", init_seed=3)
    rng = np.random.default_rng(0)
    for layer in vae.decoder.layers:  # logits of several nats, where rounding shows
        if isinstance(layer, keras.layers.Dense):
            layer.kernel.assign(3.0 * layer.kernel.numpy())
            layer.bias.assign(rng.normal(size=layer.bias.shape).astype("float32"))
    x = (rng.uniform(size=(5, 6, 6, 1)) < 0.4).astype("float32")
    z = rng.standard_normal((7, 5, 3)).astype("float32")
    return vae, z, x


def test_bfloat16_decoding_matches_numpy_with_rounded_products(bernoulli_case):
    vae, z, x = bernoulli_case
    got = np.asarray(decoding.Bfloat16Decoding(vae)(z, x))
    rounded = _bernoulli_log_prob(_numpy_logits(vae, z, rounded=True), x)
    exact = _bernoulli_log_prob(_numpy_logits(vae, z, rounded=False), x)
    assert got.shape == (7, 5)
    if has_bfloat16_units():
        # Rounded like the products (a different order of the float32 sums
        # could move a product by one bfloat16 step; here none does).
        np.testing.assert_allclose(got, rounded, atol=1e-3)
    else:  # emulated products round more coarsely: an error of bfloat16's size
        assert np.mean(np.abs(got - exact)) < 5 * np.mean(np.abs(rounded - exact))
    # Not a float32 decoder in disguise: exact products land 20 times farther.
    assert np.mean(np.abs(exact - rounded)) > 0.02
    assert np.mean(np.abs(got - exact)) > 0.02


def test_float32_decoding_is_the_models_own_and_matches_numpy(bernoulli_case):
    vae, z, x = bernoulli_case
    got = np.asarray(decoding.Float32Decoding(vae)(z, x))
    exact = _bernoulli_log_prob(_numpy_logits(vae, z, rounded=False), x)
    np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli", "gaussian",
                                        "gaussian_learned_scale", "discretized_logistic"])
@pytest.mark.parametrize("kind", ["vae", "conditional", "hierarchical"])
def test_bfloat16_decoding_follows_float32_for_every_likelihood_and_model(likelihood, kind):
    """Each likelihood's parameter blocks and each model's decoder inputs
    (labels appended; z_1 of a hierarchy) go through the bfloat16 path: it
    stays within bfloat16 rounding of the float32 path."""
    extra = {"conditional": {"num_classes": 3}, "hierarchical": {"latent_dims": (3, 2)}}
    if kind == "conditional":
        keras.utils.set_random_seed(5)
        vae = keras_vae.ConditionalVAE(input_shape=(6, 6, 1), latent_dim=3, hidden_units=(8,),
                                       likelihood=likelihood, seed=7, **extra[kind])
    else:
        vae = small_vae(likelihood=likelihood, **extra.get(kind, {}))
    rng = np.random.default_rng(1)
    x = np.round(rng.uniform(size=(4, 6, 6, 1)) * 255).astype("float32") / 255
    z = rng.standard_normal((3, 4, vae.latent_dim)).astype("float32")
    labels = np.array([0, 2, 1, 2]) if kind == "conditional" else None
    exact = np.asarray(decoding.Float32Decoding(vae)(z, x, labels))
    fast = np.asarray(decoding.Bfloat16Decoding(vae)(z, x, labels))
    assert fast.shape == exact.shape == (3, 4)
    np.testing.assert_allclose(fast, exact, rtol=0.01, atol=0.05)
    if kind == "conditional":  # the labels matter: other labels, other values
        other = np.asarray(decoding.Bfloat16Decoding(vae)(z, x, labels[::-1]))
        assert np.max(np.abs(other - fast)) > 0.05


def test_log_likelihood_in_bfloat16_keeps_the_estimate(bernoulli_case):
    vae, _, _ = bernoulli_case
    x = (np.random.default_rng(2).uniform(size=(20, 6, 6, 1)) < 0.4).astype("float32")
    estimates = {(p, seed): evaluation.log_likelihood(vae, x, num_samples=300, chunk_size=100,
                                                      seed=seed, verbose=False, precision=p)
                 for p in ("float32", "bfloat16") for seed in (0, 1)}
    change = estimates["bfloat16", 0] - estimates["float32", 0]  # same samples
    noise = estimates["float32", 0] - estimates["float32", 1]  # other samples
    assert np.all(np.isfinite(change)) and np.any(change != 0)
    assert np.abs(change.mean()) < 0.2 * np.std(noise) / np.sqrt(len(x))
    assert np.max(np.abs(change)) < 0.15


def test_evaluate_command_takes_the_precision(tmp_path):
    # A small test split: the command evaluates every test image.
    rng = np.random.default_rng(0)
    data = tmp_path / "digits.npz"
    np.savez(data, x_train=rng.integers(0, 256, (64, 28, 28), dtype=np.uint8),
             x_test=rng.integers(0, 256, (100, 28, 28), dtype=np.uint8))
    run_dir = str(tmp_path / "run")
    assert cli.main(["train", "--dataset", f"npz:{data}", "--epochs", "1", "--hidden-units",
                     "8", "--latent-dim", "2", "--batch-size", "32", "--run-dir", run_dir]) == 0
    scores = {}
    for precision in ("float32", "bfloat16"):
        assert cli.main(["evaluate", run_dir, "--iw-samples", "50",
                         "--iw-precision", precision]) == 0
        with open(os.path.join(run_dir, "evaluation.json")) as f:
            scores[precision] = json.load(f)
        assert scores[precision]["iw_precision"] == precision
    assert scores["bfloat16"]["negative_log_likelihood"] == pytest.approx(
        scores["float32"]["negative_log_likelihood"], abs=0.05)


def test_bfloat16_refuses_a_decoder_other_than_dense_layers():
    vae = small_vae(decoder="conv", input_shape=(8, 8, 1))
    with pytest.raises(ValueError) as raised:
        decoding.decoding(vae, "bfloat16")
    message = str(raised.value)
    assert message.startswith("precision='bfloat16' cannot be combined with network='conv'")
    reshape = vae.decoder.layers[1]  # the conv decoder's second layer, named
    assert f"This decoder has the layer Reshape ({reshape.name!r})." in message
    assert message.endswith("Use precision='float32' with the conv decoder, or network='mlp'.")
    user = small_vae(decoder=keras.Sequential([keras.Input((3,)), keras.layers.Dense(36),
                                               keras.layers.Reshape((6, 6, 1)),
                                               keras.layers.Activation("tanh")]))
    with pytest.raises(ValueError, match="This decoder has the layer Reshape"):
        decoding.decoding(user, "bfloat16")


def _quantized_dense():
    decoder = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, name="q"),
                                keras.layers.Reshape((3, 1, 1))])
    decoder.layers[0].quantize("int8")
    return decoder


@pytest.mark.parametrize("decoder, found", [
    (_quantized_dense, "This decoder has the layer Dense ('q', quantized to int8)."),
    (lambda: keras.Model(*_functional_dense()), "This decoder is a Functional."),
    (lambda: keras.Sequential([keras.Input((3,)), keras.layers.Reshape((3, 1, 1))]),
     "This decoder has no Dense layer."),
])
def test_bfloat16_names_what_the_decoder_is(decoder, found):
    vae = small_vae(input_shape=(3, 1, 1), decoder=decoder())
    with pytest.raises(ValueError) as raised:
        decoding.decoding(vae, "bfloat16")
    assert found in str(raised.value)


def _functional_dense():
    inputs = keras.Input((3,))
    return inputs, keras.layers.Reshape((3, 1, 1))(keras.layers.Dense(3)(inputs))


@pytest.mark.parametrize("precision", ["float16", ["bfloat16"]])
def test_an_unknown_precision_is_named(precision):
    with pytest.raises(ValueError, match=rf"Unknown precision: {re.escape(repr(precision))}"
                                         r".*'float32', 'bfloat16'"):
        evaluation.log_likelihood(small_vae(), np.zeros((2, 6, 6, 1), "float32"),
                                  num_samples=2, precision=precision)


def test_bfloat16_decoding_takes_a_users_dense_decoder_without_bias_and_with_lora():
    decoder = keras.Sequential([keras.Input((3,)),
                                keras.layers.Dense(10, activation="relu", use_bias=False),
                                keras.layers.Dense(36)])
    vae = small_vae(decoder=decoder, hidden_units=(10,))
    rng = np.random.default_rng(4)
    x = (rng.uniform(size=(4, 6, 6, 1)) < 0.4).astype("float32")
    z = rng.standard_normal((2, 4, 3)).astype("float32")
    before = np.asarray(decoding.Bfloat16Decoding(vae)(z, x))
    np.testing.assert_allclose(before, decoding.Float32Decoding(vae)(z, x), rtol=0.01, atol=0.05)
    decoder.layers[1].enable_lora(2)  # the kernel becomes a computed tensor
    decoder.layers[1].lora_kernel_b.assign(rng.standard_normal((2, 36)).astype("float32"))
    after = np.asarray(decoding.Bfloat16Decoding(vae)(z, x))
    np.testing.assert_allclose(after, decoding.Float32Decoding(vae)(z, x), rtol=0.01, atol=0.05)
    assert np.max(np.abs(after - before)) > 0.5
