"""The logistic mixture whose locations are shifted by each pixel's causal
neighbours, against float64 NumPy references that go through the image
pixel by pixel in raster order (no passes, no padding): its log-probability,
its draws for the same noise, its mean; and its normalisation, summed over
every image of two pixels."""

import itertools
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import logsumexp
from test_logistic_mixture import bin_probability, unpack

import keras_vae
from keras_vae.distributions import likelihoods
from keras_vae.distributions.logistic_mixture import parameter_count
from keras_vae.distributions.neighbour_context import GRADIENTS, Context
from keras_vae.distributions.neighbour_mixture import (
    NEIGHBOURS,
    AutoregressiveLogisticMixture,
    passes,
)


def reference_parts(params, components, channels, context):
    """The mixture's parameters, the shift coefficients b (`(N, K, C)` per
    pixel, or `(N, C, K, C)` with `cross_channel`: source channel d second)
    and the scale coefficients e (`(M, K, C)`, or None), float64."""
    base = parameter_count(channels, components)
    p = np.asarray(params, "float64")
    shifts = context.neighbours * (channels if context.cross_channel else 1)
    b = p[..., base:base + shifts * components * channels].reshape(
        p.shape[:-1] + ((context.neighbours, channels) if context.cross_channel
                        else (context.neighbours,)) + (components, channels))
    e = p[..., base + shifts * components * channels:].reshape(
        p.shape[:-1] + (len(GRADIENTS), components, channels)) if context.local_scales else None
    return (*unpack(p[..., :base], components, channels), b, e)


def centred(image, i, j):
    """Pixel (i, j) of `image` in [0, 1], centred; 0 outside (mid-grey)."""
    h, w, channels = image.shape
    return image[i, j] - 0.5 if 0 <= i < h and 0 <= j < w else np.zeros(channels)


def shifted_locs(parts, image, i, j, context):
    """Pixel (i, j)'s locations shifted by the neighbours of `image`."""
    _, locs, _, _, b, _ = parts
    shifted = locs[i, j].copy()
    for n, (dy, dx) in enumerate(NEIGHBOURS[:context.neighbours]):
        value = centred(image, i + dy, j + dx)
        if context.cross_channel:
            for d in range(image.shape[2]):
                shifted += b[i, j, n, d] * value[d]
        else:
            shifted += b[i, j, n] * value
    return shifted


def widened_scales(parts, image, i, j, context):
    """Pixel (i, j)'s scales widened by the local gradients of `image`."""
    _, _, scales, _, _, e = parts
    widened = scales[i, j].copy()
    if context.local_scales:
        for m, ((ay, ax), (by, bx)) in enumerate(GRADIENTS):
            gradient = np.abs(centred(image, i + ay, j + ax) - centred(image, i + by, j + bx))
            widened += np.logaddexp(0.0, e[i, j, m]) * 255.0 * gradient
    return widened


def reference_log_prob(params, levels, components, context):
    """Σ_ij log Σ_k π_k Π_c P(x_c | loc shifted by the neighbours and x_<c,
    scale widened by the local gradients)."""
    context = as_context(context)
    h, w, channels = levels.shape
    parts = reference_parts(params, components, channels, context)
    log_weights, _, _, coefficients, _, _ = parts
    x, total = levels / 255.0, 0.0
    for i, j in itertools.product(range(h), range(w)):
        locs, per_component, pair = shifted_locs(parts, x, i, j, context), \
            log_weights[i, j].copy(), 0
        scales = widened_scales(parts, x, i, j, context)
        for c in range(channels):
            mean = locs[:, c].copy()
            for before in range(c):
                mean += coefficients[i, j, :, pair] * x[i, j, before]
                pair += 1
            per_component += np.log(bin_probability(levels[i, j, c], 255.0 * mean,
                                                    scales[:, c]))
        total += logsumexp(per_component)
    return total


def reference_draw(params, noise, components, context):
    """The image that `noise` (the Gumbels and uniforms) picks, drawn pixel
    after pixel in raster order."""
    context = as_context(context)
    gumbel, uniforms = (np.asarray(part, "float64") for part in noise)
    h, w, channels = uniforms.shape
    parts = reference_parts(params, components, channels, context)
    log_weights, _, _, coefficients, _, _ = parts
    image = np.full((h, w, channels), np.nan)  # a pixel not drawn yet is never read
    for i, j in itertools.product(range(h), range(w)):
        locs, pair = shifted_locs(parts, image, i, j, context), 0
        scales = widened_scales(parts, image, i, j, context)
        k = np.argmax(log_weights[i, j] + gumbel[i, j])
        for c in range(channels):
            mean = locs[k, c]
            for before in range(c):
                mean += coefficients[i, j, k, pair] * image[i, j, before]
                pair += 1
            u = uniforms[i, j, c]
            logistic = 255.0 * mean + scales[k, c] * (np.log(u) - np.log1p(-u))
            image[i, j, c] = np.clip(np.round(logistic), 0, 255) / 255.0
    return image


def reference_mean(params, components, channels, context, h, w):
    """E[x], pixel after pixel: each component's mean given the neighbours'
    means and the channels before (clipped to [0, 1]), mixed by weight."""
    context = as_context(context)
    parts = reference_parts(params, components, channels, context)
    log_weights, _, _, coefficients, _, _ = parts
    image = np.full((h, w, channels), np.nan)
    for i, j in itertools.product(range(h), range(w)):
        locs, pair, means = shifted_locs(parts, image, i, j, context), 0, []
        for c in range(channels):
            mean = locs[:, c].copy()
            for before in range(c):
                mean += coefficients[i, j, :, pair] * means[before]
                pair += 1
            means.append(mean)
        image[i, j] = np.exp(log_weights[i, j]) @ np.clip(np.stack(means, -1), 0.0, 1.0)
    return image


def as_context(context):
    """A `Context`; an int N is the default likelihood's (every channel, local scales)."""
    return Context(context, True, True) if isinstance(context, int) else context


def random_params(likelihood, shape, seed, coefficient_scale=3.0):
    """Decoder outputs for images of `shape`: locations inside and beyond
    the levels, strong neighbour coefficients."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    k = likelihood.components
    params = rng.normal(size=(h, w, likelihood.output_channels(c)))
    params[..., k:k + k * c] = rng.uniform(-0.2, 1.2, (h, w, k * c))
    params[..., parameter_count(c, k):] *= coefficient_scale
    return params.astype("float32")


@pytest.mark.parametrize("components,neighbours,shape", [
    (1, 1, (5, 4, 1)), (3, 4, (6, 5, 3)), (2, 12, (5, 6, 2)), (4, 4, (3, 7, 3))])
def test_log_prob_matches_a_raster_float64_reference(components, neighbours, shape):
    likelihood = AutoregressiveLogisticMixture(components, neighbours)
    params = random_params(likelihood, shape, seed=neighbours)
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, shape).astype("float64")]  # far out in the tails
    drawn = likelihood.sample(params[None], seed=(3, 4))[0]  # where the model puts its mass
    images.append(np.round(255.0 * np.asarray(drawn, "float64")))
    images[0][0, :2] = 0.0   # the edge bins
    images[0][-1, -2:] = 255.0
    for levels in images:
        want = reference_log_prob(params, levels, components, neighbours)
        distribution = likelihood.distribution(params[None], 3)
        got = np.asarray(likelihood.log_prob(distribution, (levels / 255.0)[None]
                                             .astype("float32")))[0]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    # the neighbours matter: without their coefficients the value changes
    unshifted = params.copy()
    unshifted[..., parameter_count(shape[2], components):] = 0.0
    assert abs(reference_log_prob(unshifted, images[1], components, neighbours) - want) > 1.0


@pytest.mark.parametrize("shape", [(1, 2, 1), (2, 1, 1)])
def test_every_image_of_two_pixels_sums_to_one(shape):
    """Σ over the 65 536 images of two pixels (the second predicted from the
    first, left or up) of p(x) is 1."""
    likelihood = AutoregressiveLogisticMixture(components=2, neighbours=4)
    params = random_params(likelihood, shape, seed=5)
    params[..., 2:4] = 0.5  # locations inside the levels: most mass away from the edges
    first, second = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    images = np.stack([first.ravel(), second.ravel()], -1).reshape((-1,) + shape)
    distribution = likelihood.distribution(params[None], 3)
    log_p = np.asarray(likelihood.log_prob(distribution, (images / 255.0).astype("float32")),
                       "float64")
    assert np.exp(logsumexp(log_p)) == pytest.approx(1.0, abs=1e-4)
    # the second pixel's distribution depends on the first
    grid = np.exp(log_p.reshape(256, 256))
    conditional = grid / grid.sum(axis=1, keepdims=True)
    assert np.abs(conditional[10] - conditional[240]).sum() > 0.1


@pytest.mark.parametrize("components,neighbours,shape", [
    (2, 4, (6, 7, 3)), (3, 12, (5, 5, 1)), (1, 1, (2, 9, 2))])
def test_a_draw_and_the_mean_match_a_raster_loop(components, neighbours, shape):
    likelihood = AutoregressiveLogisticMixture(components, neighbours)
    params = random_params(likelihood, shape, seed=components, coefficient_scale=1.0)
    k, c = components, shape[2]
    params[..., k + k * c:k + 2 * k * c] += 2.0  # wider scales: draws spread over the levels
    distribution = likelihood.distribution(params[None], 3)
    noise = distribution.noise((7, 8))
    noise_np = [np.asarray(part)[0] for part in noise]
    got = np.asarray(distribution.draw(noise))[0]
    want = reference_draw(params, noise_np, components, neighbours)
    levels = np.abs(np.round(255.0 * got) - np.round(255.0 * want))
    assert np.mean(levels == 0) >= 0.99 and levels.max() <= 2  # float32 vs float64 rounding
    # the same noise without the neighbours' shifts draws another image
    assert not np.allclose(want, reference_draw(_without_neighbours(params, k, c), noise_np,
                                                components, neighbours))
    mean = np.asarray(likelihood.mean(params[None]))[0]
    np.testing.assert_allclose(mean, reference_mean(params, components, shape[2],
                                                    neighbours, *shape[:2]), atol=1e-5)


@pytest.mark.parametrize("neighbours,shape", [(1, (1, 9, 1)), (4, (4, 5, 2)), (12, (5, 4, 1))])
def test_the_longest_chain_of_neighbours_is_followed_to_its_end(neighbours, shape):
    """Each pixel's location: 0.6 and a third of each neighbour's value (one
    component, the smallest scale). In one row the last pixel's mean is right
    only after all `passes` passes (one fewer leaves it off by 3⁻⁸); in two
    dimensions the shifts of several neighbours damp a missing pass's error
    below the tolerance, and these cases check the values only."""
    likelihood = AutoregressiveLogisticMixture(1, neighbours)
    c = shape[2]
    params = np.zeros(shape[:2] + (likelihood.output_channels(c),), "float32")
    params[..., 1:1 + c] = 0.6                          # locations
    params[..., 1 + c:1 + 2 * c] = -60.0                # the smallest scale
    params[..., parameter_count(c, 1):] = 1.0 / 3.0     # every neighbour's coefficient
    want = reference_mean(params, 1, c, neighbours, *shape[:2])
    np.testing.assert_allclose(np.asarray(likelihood.mean(params[None]))[0], want, atol=1e-6)
    drawn = np.asarray(likelihood.sample(params[None], seed=(0, 0)))[0]
    noise = likelihood.distribution(params[None], 3).noise((0, 0))
    np.testing.assert_array_equal(
        np.round(255 * drawn),
        np.round(255 * reference_draw(params, [np.asarray(p)[0] for p in noise], 1,
                                      neighbours)))


def _without_neighbours(params, components, channels):
    params = params.copy()
    params[..., parameter_count(channels, components):] = 0.0
    return params


def test_draws_follow_the_model():
    """The frequencies of the second pixel's levels over many draws, for a
    first pixel that the draws put at one level, are the model's."""
    likelihood = AutoregressiveLogisticMixture(components=2, neighbours=1)
    params = random_params(likelihood, (1, 2, 1), seed=2)
    params[0, 0, :2] = [30.0, 0.0]  # the first pixel: one component ...
    params[0, 0, 2:6] = [0.2, 0.2, -40.0, -40.0]  # ... a tiny scale: always level 51
    params[0, 1, 4:6] = [2.0, 2.5]  # the second: wide
    draws = np.asarray(likelihood.sample(np.repeat(params[None], 20_000, 0), seed=(1, 1)))
    first = np.round(255 * draws[:, 0, 0, 0])
    assert len(np.unique(first)) == 1
    image = np.zeros((256, 1, 2, 1))
    image[:, 0, 0, 0], image[:, 0, 1, 0] = first[0], np.arange(256)
    log_p = np.asarray(likelihood.log_prob(likelihood.distribution(params[None], 3),
                                           (image / 255.0).astype("float32")))
    want = np.exp(log_p - logsumexp(log_p))
    counts = np.bincount(np.round(255 * draws[:, 0, 1, 0]).astype(int), minlength=256)
    # bins of 16 levels, within five standard errors
    want_bins, got_bins = want.reshape(-1, 16).sum(1), counts.reshape(-1, 16).sum(1) / 20_000
    assert np.all(np.abs(got_bins - want_bins) <= 5 * np.sqrt(want_bins / 20_000) + 1e-3)


def test_passes_are_the_longest_chain():
    assert passes(1, 1, 4) == 1
    assert passes(1, 5, 1) == 5               # left to right
    assert passes(3, 3, 4) == 2 * 3 + 3 - 2   # a row, then up-right makes it 2H + W − 2
    assert passes(32, 32, 4) == 94 and passes(32, 32, 1) == 32
    assert passes(32, 32, 12) == 3 * 31 + 32
    # local scales read the up-right neighbour's row too (up − up-left, ...)
    assert Context(1, False, False).passes(32, 32) == 32
    assert Context(1, False, True).passes(32, 32) == 94


def test_config_errors_and_the_model():
    likelihood = likelihoods.get("autoregressive_logistic_mixture")
    assert likelihood.get_config() == {"components": 5, "min_scale": 0.01, "neighbours": 4,
                                       "cross_channel": True, "local_scales": True}
    # K·(1 + 2C + C(C−1)/2), then K·C for N·C shift blocks and 5 scale blocks
    assert likelihood.output_channels(3) == 5 * (1 + 6 + 3) + 5 * 3 * (4 * 3 + 5)
    assert AutoregressiveLogisticMixture(5, 4, cross_channel=False, local_scales=False
                                         ).output_channels(3) == 5 * 10 + 5 * 3 * 4
    assert AutoregressiveLogisticMixture(5, 4, local_scales=False
                                         ).output_channels(3) == 5 * 10 + 5 * 3 * 12
    assert AutoregressiveLogisticMixture(5, 4, cross_channel=False
                                         ).output_channels(3) == 5 * 10 + 5 * 3 * 9
    saved = keras.saving.serialize_keras_object(
        AutoregressiveLogisticMixture(2, 12, local_scales=False))
    restored = likelihoods.get(saved)
    assert type(restored) is AutoregressiveLogisticMixture and restored.get_config() == {
        "components": 2, "min_scale": 0.01, "neighbours": 12, "cross_channel": True,
        "local_scales": False}
    # a model saved before the two switches existed: the same-channel shift
    for key in ("cross_channel", "local_scales"):
        del saved["config"][key]
    assert likelihoods.get(saved).context == Context(12, False, False)
    for bad in (0, 13, 2.0, True, "4"):
        with pytest.raises(ValueError, match=r"Expected an integer from 1 to 12 for neighbours"):
            AutoregressiveLogisticMixture(neighbours=bad)
    for name in ("cross_channel", "local_scales"):
        with pytest.raises(ValueError, match=rf"Expected True or False for {name}. "
                                             rf"Received: {name}=1"):
            AutoregressiveLogisticMixture(**{name: 1})
    with pytest.raises(ValueError, match=r"needs images shaped \(height, width, channels\). "
                                         r"Received input_shape=\(64,\)"):
        keras_vae.VAE((64,), likelihood="autoregressive_logistic_mixture")
    vae = keras_vae.VAE((6, 5, 3), latent_dim=2, decoder="conv", encoder="conv",
                        conv_filters=(4, 4),
                        likelihood=AutoregressiveLogisticMixture(2, neighbours=3))
    assert vae.decoder.output_shape[1:] == (6, 5, 2 * 10 + 2 * 3 * (3 * 3 + 5))
    assert vae.decode(np.zeros((2, 2), "float32")).shape == (2, 6, 5, 3)


def test_samples_of_z_broadcast_against_one_batch_of_images():
    """log p(x|z) for S samples of z per image (`num_samples > 1`): params
    `(S, batch, H, W, P)` against images `(batch, H, W, C)`, H ≠ W, give each
    sample's value."""
    likelihood = AutoregressiveLogisticMixture(2, neighbours=4)
    shape = (3, 5, 2)
    params = np.stack([random_params(likelihood, shape, seed=s) for s in range(6)]
                      ).reshape((3, 2) + shape[:2] + (-1,))
    levels = np.random.default_rng(0).integers(0, 256, (2,) + shape).astype("float64")
    got = np.asarray(likelihood.log_prob(likelihood.distribution(params, 3),
                                         (levels / 255.0).astype("float32")))
    want = [[reference_log_prob(params[s, b], levels[b], 2, 4) for b in range(2)]
            for s in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    mean = np.asarray(likelihood.mean(params))  # a canvas of rank 5
    for s, b in itertools.product(range(3), range(2)):
        np.testing.assert_allclose(mean[s, b], reference_mean(params[s, b], 2, 2, 4, 3, 5),
                                   atol=1e-5)


def test_outputs_that_are_not_an_image_of_known_size_are_refused():
    likelihood = AutoregressiveLogisticMixture(2, neighbours=4)
    params = random_params(likelihood, (3, 4, 1), seed=0)
    with pytest.raises(ValueError, match="needs images shaped \\(height, width, channels\\) of "
                                         "a fixed size. Received data with 2 dimensions"):
        likelihood.distribution(params[None], 2)
    for unknown in ((1, None, 4, params.shape[-1]), (1, 3, None, params.shape[-1]),
                    (2, 1, 3, None, params.shape[-1])):
        traced = tf.function(lambda p: likelihood.distribution(p, 3).mean(),
                             input_signature=[tf.TensorSpec(unknown, tf.float32)])
        with pytest.raises(ValueError, match=r"of a fixed size.*decoder outputs of shape "
                                             + re.escape(str(unknown))):
            traced.get_concrete_function()
    with pytest.raises(ValueError, match=r"Expected K·\(1 \+ 2C \+ C\(C−1\)/2\) \+ K·C·B "
                                         r"decoder outputs per pixel for K=2 components and "
                                         r"the B blocks of Context\(neighbours=4, "
                                         r"cross_channel=True, local_scales=True\) .*"
                                         r"Received 25, which no number"):
        likelihood.distribution(np.concatenate([params, params[..., :1]], -1)[None], 3)


@pytest.mark.long  # 10 s; the matrix's autoregressive cells export float32 LiteRT in make test
def test_the_web_pages_float32_and_int8_files_decode_as_keras(tmp_path):
    """The LiteRT files of the web page (float32, and int8 calibrated on
    draws from the prior), whose passes are unrolled: the int8 converter
    crashes on a while loop."""
    import json

    from keras_vae import _quiet, edge, export

    vae = keras_vae.VAE((8, 8, 1), latent_dim=2, hidden_units=(16,),
                        likelihood=AutoregressiveLogisticMixture(2, neighbours=4))
    with _quiet.converter_logs_hidden():
        export.export_web(vae, str(tmp_path), batch_sizes=(4,))
    variants = json.loads((tmp_path / "metadata.json").read_text())["variants"]
    assert [variant["file"] for variant in variants] == ["vae_float32.tflite",
                                                          "vae_int8.tflite"]
    z = np.random.default_rng(0).standard_normal((4, 2)).astype("float32")
    want = np.asarray(vae.decode(z))
    for name, tolerance in (("float32", 1e-5), ("int8", 0.02)):
        generator = edge.LiteRTGenerator(str(tmp_path / f"vae_{name}.tflite"))
        np.testing.assert_allclose(generator.decode(z), want, atol=tolerance, err_msg=name)


@pytest.mark.parametrize("cross_channel,local_scales",
                         [(False, False), (True, False), (False, True), (True, True)])
def test_each_part_of_the_context_matches_the_raster_references(cross_channel, local_scales):
    """log p, a draw for the same noise and the mean, with each switch of
    `neighbour_context` on and off, against the raster float64 references."""
    likelihood = AutoregressiveLogisticMixture(3, 4, cross_channel=cross_channel,
                                               local_scales=local_scales)
    context, shape = likelihood.context, (5, 6, 3)
    params = random_params(likelihood, shape, seed=11, coefficient_scale=1.0)
    params[..., 3 + 9:3 + 18] += 1.0  # wider scales: draws spread over the levels
    levels = np.random.default_rng(3).integers(0, 256, shape).astype("float64")
    distribution = likelihood.distribution(params[None], 3)
    got = np.asarray(likelihood.log_prob(distribution, (levels / 255.0)[None]
                                         .astype("float32")))[0]
    want = reference_log_prob(params, levels, 3, context)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    noise = distribution.noise((5, 6))
    drawn = np.asarray(distribution.draw(noise))[0]
    want_drawn = reference_draw(params, [np.asarray(part)[0] for part in noise], 3, context)
    levels_off = np.abs(np.round(255.0 * drawn) - np.round(255.0 * want_drawn))
    assert np.mean(levels_off == 0) >= 0.99 and levels_off.max() <= 2
    np.testing.assert_allclose(np.asarray(likelihood.mean(params[None]))[0],
                               reference_mean(params, 3, 3, context, *shape[:2]), atol=1e-5)


def test_the_run_options_set_the_context():
    from keras_vae.runs import config, model_options

    kwargs = model_options.model_kwargs(config.resolve(
        {"likelihood": "autoregressive_logistic_mixture", "mixture_neighbours": 2,
         "mixture_cross_channel": False, "mixture_local_scales": "true"}))
    assert kwargs["likelihood"].context == Context(2, False, True)
    kwargs = model_options.model_kwargs(config.resolve(
        {"likelihood": "autoregressive_logistic_mixture", "mixture_local_scales": False}))
    assert kwargs["likelihood"].context == Context(4, True, False)
