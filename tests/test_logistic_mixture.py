"""The discretized logistic mixture with PixelCNN++'s channel coupling,
against a float64 NumPy reference written from the definition (CDF
differences, no log-space algebra), edge bins and extreme scales included."""

import itertools

import numpy as np
import pytest
from scipy.special import expit, logsumexp

import keras_vae
from keras_vae import evaluation
from keras_vae.distributions import likelihoods
from keras_vae.distributions.logistic_mixture import (
    INITIAL_SCALE,
    DiscretizedLogisticMixture,
    channels_of,
    parameter_count,
)

SOFTPLUS_INVERSE_OF_ONE = np.log(np.e - 1.0)


def unpack(params, components, channels):
    """The mixture's parameters from the decoder's outputs, in float64."""
    p = np.asarray(params, "float64")
    k, c = components, channels
    sizes = np.cumsum([k, k * c, k * c])
    logits, locs, raw_scales, raw_coefficients = np.split(p, sizes, axis=-1)
    shape = p.shape[:-1]
    scales = 1e-2 + INITIAL_SCALE * np.logaddexp(0.0, raw_scales + SOFTPLUS_INVERSE_OF_ONE)
    return (logits - logsumexp(logits, -1, keepdims=True), locs.reshape(shape + (k, c)),
            scales.reshape(shape + (k, c)),
            np.tanh(raw_coefficients).reshape(shape + (k, c * (c - 1) // 2)))


def bin_probability(level, mean, scale):
    """P(level) of a logistic discretized on 0..255: the CDF's difference over
    [level − ½, level + ½], everything below ½ on 0 and above 254.5 on 255.
    Written as a difference of survival functions above the mean, so that
    float64 keeps the far tails."""
    a = np.where(level <= 0, -np.inf, (level - 0.5 - mean) / scale)
    b = np.where(level >= 255, np.inf, (level + 0.5 - mean) / scale)
    return np.where(a > 0, expit(-a) - expit(-b), expit(b) - expit(a))


def reference_log_prob(params, levels, components):
    """log p(x) per pixel: log Σ_k π_k Π_c P(x_c | mean shifted by x_<c)."""
    channels = levels.shape[-1]
    log_weights, locs, scales, coefficients = unpack(params, components, channels)
    x = levels / 255.0
    total = np.array(log_weights)
    pair = 0
    for c in range(channels):
        mean = locs[..., c].copy()
        for j in range(c):
            mean += coefficients[..., pair] * x[..., None, j]
            pair += 1
        total = total + np.log(bin_probability(levels[..., None, c], 255.0 * mean,
                                               scales[..., c]))
    return logsumexp(total, axis=-1)


def random_case(components, channels, pixels, seed, scale_shift=0.0):
    """Random parameters (means beyond the edges too) and levels: the edge
    bins, draws of the model itself (where it puts its mass, also at tiny
    scales), and uniform levels (far out in the tails)."""
    rng = np.random.default_rng(seed)
    size = parameter_count(channels, components)
    params = rng.normal(size=(pixels, size))
    k, c = components, channels
    params[:, k:k + k * c] = rng.uniform(-0.3, 1.3, (pixels, k * c))
    params[:, k + k * c:k + 2 * k * c] += scale_shift
    params = params.astype("float32")
    levels = rng.integers(0, 256, (pixels, channels)).astype("float64")
    drawn = DiscretizedLogisticMixture(components).sample(params, seed=(seed, 0))
    levels[pixels // 2:] = np.round(255.0 * np.asarray(drawn))[pixels // 2:]
    levels[:5] = 0.0                                # the edge bins
    levels[5:10] = 255.0
    return params, levels


def model_log_prob(likelihood, params, levels, event_ndims=1):
    distribution = likelihood.distribution(params, event_ndims)
    return np.asarray(likelihood.log_prob(distribution, (levels / 255.0).astype("float32")))


@pytest.mark.parametrize("components,channels", [(1, 1), (3, 1), (2, 3), (5, 3), (2, 4)])
@pytest.mark.parametrize("scale_shift", [-30.0, 0.0, 4.0, 300.0])  # min_scale ... huge
def test_log_prob_matches_a_float64_reference(components, channels, scale_shift):
    likelihood = DiscretizedLogisticMixture(components=components)
    params, levels = random_case(components, channels, 60, seed=components + channels,
                                 scale_shift=scale_shift)
    want = reference_log_prob(params, levels, components)
    finite = np.isfinite(want)  # float64's direct difference underflows far out
    assert finite.mean() >= 0.5
    got = model_log_prob(likelihood, params, levels)  # 60 examples of one pixel
    assert np.all(np.isfinite(got))
    # float32 holds a mean of ~128 levels to ~1e-5 levels; divided by the
    # smallest scale (0.01 levels) that moves log p by up to ~1e-3.
    atol = 2e-3 if scale_shift < 0 else 2e-4
    np.testing.assert_allclose(got[finite], want[finite], rtol=2e-5, atol=atol)
    # Far in the tails the log-space form keeps what float64 loses: below it.
    assert np.all(got[~finite] < -700)


def test_one_example_sums_its_pixels_and_the_model_uses_the_coupling():
    likelihood = DiscretizedLogisticMixture(components=2)
    params, levels = random_case(2, 3, 12, seed=7)
    per_pixel = reference_log_prob(params, levels, 2)
    got = model_log_prob(likelihood, params.reshape(3, 2, 2, -1), levels.reshape(3, 2, 2, 3),
                         event_ndims=3)
    np.testing.assert_allclose(got, per_pixel.reshape(3, 4).sum(-1), rtol=1e-5)
    uncoupled = params.copy()
    uncoupled[:, -2 * 3:] = 0.0  # tanh(0) = 0: no channel shifts another
    assert not np.allclose(reference_log_prob(uncoupled, levels, 2), per_pixel)


def test_the_probabilities_of_all_levels_sum_to_one():
    """Every pair of levels of a 2-channel pixel, coupled, edges included."""
    likelihood = DiscretizedLogisticMixture(components=3)
    rng = np.random.default_rng(3)
    params = rng.normal(size=(1, parameter_count(2, 3))).astype("float32")
    params[0, 3:9] = [0.0, 0.5, 1.0, 0.02, 0.9, 0.4]   # locs at and near the edges
    params[0, 9:15] -= 2.5                               # scales of a few levels
    levels = np.array(list(itertools.product(range(256), repeat=2)), "float64")
    probabilities = np.exp(model_log_prob(likelihood, np.repeat(params, len(levels), 0),
                                          levels))
    assert abs(probabilities.sum() - 1.0) < 1e-4


def test_samples_follow_the_distribution():
    """The joint frequencies of 40 000 draws of a coupled 2-channel pixel
    match its probabilities (total variation), and the mean is theirs; the
    draws shaped as 10 000 images of 2×2 pixels."""
    likelihood = DiscretizedLogisticMixture(components=2)
    params = np.zeros((1, parameter_count(2, 2)), "float32")
    params[0, :2] = [0.3, -0.2]                   # weights
    params[0, 2:6] = [0.3, 0.1, 0.7, -0.2]        # locs (k, c)
    params[0, 6:10] = -3.0                        # scales of about 1 level
    params[0, 10:12] = [1.5, -1.0]                # couplings: tanh ≈ 0.9, −0.76
    images = np.broadcast_to(params, (10_000, 2, 2, params.shape[-1]))
    draws = np.asarray(likelihood.sample(images, seed=(1, 2)))
    assert draws.shape == (10_000, 2, 2, 2)
    draws = draws.reshape(-1, 2)
    levels = np.round(draws * 255.0)
    np.testing.assert_allclose(draws * 255.0, levels, atol=1e-3)  # on the 256 levels
    cells, counts = np.unique(levels, axis=0, return_counts=True)
    want = np.exp(reference_log_prob(np.repeat(params, len(cells), 0), cells, 2))
    assert want.sum() > 0.995  # the draws hit the cells that hold the mass
    assert 0.5 * np.abs(counts / counts.sum() - want).sum() < 0.03
    mean = np.asarray(likelihood.mean(images))
    assert mean.shape == (10_000, 2, 2, 2)
    np.testing.assert_allclose(mean[0, 0, 0], draws.mean(0), atol=1.5 / 255)


def test_components_are_drawn_by_their_weights():
    """Three components far apart (levels 25, 128 and 230, scales of about a
    level): the share of draws near each is its softmax weight, to 4 binomial
    standard deviations. (With two components, argmax(log π − Gumbel) would
    draw as argmax(log π + Gumbel) does.)"""
    logits = np.array([0.3, -0.2, -1.0], "float32")
    params = np.zeros((1, parameter_count(1, 3)), "float32")
    params[0, :3] = logits
    params[0, 3:6] = [0.1, 0.5, 0.9]
    params[0, 6:9] = -3.0
    draws = np.asarray(DiscretizedLogisticMixture(3).sample(
        np.broadcast_to(params, (20_000, 2, params.shape[-1])), seed=(4, 5)))
    assert draws.shape == (20_000, 2, 1)
    share = np.bincount(np.digitize(draws.ravel(), [0.3, 0.7]), minlength=3) / draws.size
    weights = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(share, weights, atol=4 * np.sqrt(0.25 / draws.size))


def test_the_mean_is_the_mixture_of_the_coupled_component_means():
    likelihood = DiscretizedLogisticMixture(components=2)
    params = np.zeros((1, parameter_count(3, 2)), "float32")
    params[0, :2] = [0.0, np.log(3.0)]                   # weights 1/4, 3/4
    params[0, 2:8] = [0.2, 0.1, 0.5, 0.6, 0.3, 1.5]      # locs; the last beyond the edge
    params[0, 14:20] = [0.5, 0.2, -0.4, 0.0, 1.0, 0.3]   # raw couplings (k, pairs)
    t = np.tanh(params[0, 14:20]).reshape(2, 3)
    locs = params[0, 2:8].reshape(2, 3)
    components = []
    for k in range(2):
        red = locs[k, 0]
        green = locs[k, 1] + t[k, 0] * red
        blue = locs[k, 2] + t[k, 1] * red + t[k, 2] * green
        components.append(np.clip([red, green, blue], 0.0, 1.0))
    assert 0 < components[0][2] < 1  # each coupling of blue shows in the mean
    want = 0.25 * components[0] + 0.75 * components[1]
    np.testing.assert_allclose(np.asarray(likelihood.mean(params))[0], want, atol=1e-6)


def test_an_untrained_decoder_starts_at_a_scale_of_16_levels_and_min_scale_floors_it():
    """Raw outputs of 0: one component at level 127.5 with scale 16 (written
    out here, not read from the module)."""
    params = np.zeros((1, parameter_count(1, 1)), "float32")
    params[0, 1] = 127.5 / 255.0
    for level in (128.0, 200.0):
        want = np.log(expit((level + 0.5 - 127.5) / 16.01) - expit((level - 0.5 - 127.5) / 16.01))
        got = model_log_prob(DiscretizedLogisticMixture(1), params, np.array([[level]]))
        np.testing.assert_allclose(got, [want], rtol=1e-5)
    params[0, 2] = -1e4  # the softplus at 0: the scale is the floor, 0.5 levels
    got = model_log_prob(DiscretizedLogisticMixture(1, min_scale=0.5), params,
                         np.array([[128.0]]))
    np.testing.assert_allclose(got, [np.log(expit(1.0 / 0.5) - expit(0.0))], rtol=1e-5)


def test_bits_per_dimension_use_the_discrete_convention():
    likelihood = likelihoods.get("discretized_logistic_mixture")
    assert likelihood.kind == "levels"
    assert evaluation.bits_convention(likelihood, binarized=False) == ("discrete", None)
    nll = 3072 * np.log(2.0) * 3.5  # 3.5 bits per value of a 32×32×3 image
    assert evaluation.bits_per_dimension(nll, 3072, "discrete") == pytest.approx(3.5)


def test_the_model_sizes_its_decoder_for_the_mixture_and_refuses_bad_components():
    vae = keras_vae.VAE((6, 5, 3), latent_dim=2, likelihood=DiscretizedLogisticMixture(4),
                        hidden_units=(8,))
    assert vae.decoder.output_shape == (None, 6, 5, 4 * (1 + 6 + 3))
    assert np.asarray(vae.decode(np.zeros((2, 2), "float32"))).shape == (2, 6, 5, 3)
    for channels in range(1, 17):  # the decoder's width gives the channels back
        for components in (1, 5, 10):
            assert channels_of(parameter_count(channels, components), components) == channels
    assert DiscretizedLogisticMixture(7, 0.5).get_config() == {"components": 7,
                                                               "min_scale": 0.5}
    for bad in (0, 2.5, True, "3"):
        with pytest.raises(ValueError, match=f"positive integer for components. Received: "
                                             f"components={bad!r}"):
            DiscretizedLogisticMixture(components=bad)
    assert likelihoods.get({"module": "keras_vae.distributions.logistic_mixture",
                            "class_name": "DiscretizedLogisticMixture",
                            "config": {"components": 7, "min_scale": 0.5},
                            "registered_name": "keras_vae>DiscretizedLogisticMixture"}
                           ).components == 7


def test_the_run_option_sets_the_components():
    from keras_vae.runs import config, model_options

    kwargs = model_options.model_kwargs(config.resolve(
        {"likelihood": "discretized_logistic_mixture", "mixture_components": 10}))
    assert kwargs["likelihood"].components == 10
    with pytest.raises(ValueError, match="mixture_components applies to the "
                                         "discretized_logistic_mixture and "
                                         "autoregressive_logistic_mixture likelihoods, not "
                                         "to 'bernoulli'"):
        model_options.model_kwargs(config.resolve({"mixture_components": 10}))
