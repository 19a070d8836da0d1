"""The discretized logistic mixture of PixelCNN++ (Salimans et al. 2017), for
8-bit images of any number of channels.

Data in [0, 1] holds the levels k / 255 of each channel. Every pixel has K
components with weights π = softmax(logits); under component k, the
channels are drawn in order, and channel c is a logistic of scale s_kc and
mean (on the 0–255 scale)

    μ_kc = 255 · (loc_kc + Σ_{j<c} tanh(a_kcj) · x_j),

the *channel coupling* of PixelCNN++: each channel's mean is shifted
linearly by the channels before it (green by red, blue by red and green),
so one component models correlated colours. The probability of level k is
the logistic's mass on [k − ½, k + ½], with all the mass below ½ on level 0
and above 254.5 on level 255 (the edge bins). Per pixel

    p(x) = Σ_k π_k Π_c P_kc(x_c | x_<c),

computed in log space: for the bin (a, b) in units of the scale,
log(σ(b) − σ(a)) = −softplus(−b) − softplus(a) + log(1 − e^(a−b)), exact
and finite at any scale and any distance from the mean.

The decoder gives, per pixel, `output_channels(C) = K · (1 + 2C + C(C−1)/2)`
values: K logits, then K·C locs, K·C raw scales r (the scale in levels is
min_scale + INITIAL_SCALE · softplus(r + softplus⁻¹(1)), INITIAL_SCALE at
r = 0) and K·C(C−1)/2 raw coupling coefficients a.
"""

import functools
import math

import keras
import tensorflow as tf

from keras_vae.distributions import fused, likelihoods
from keras_vae.distributions import scale as scale_lib
from keras_vae.distributions.scale import positive_scale

LEVELS = 255.0
#: Each logistic's scale at a raw output of 0, in levels: wide enough that an
#: untrained decoder's first losses are a few nats per value, not hundreds.
INITIAL_SCALE = 16.0


def parameter_count(channels, components):
    """Decoder outputs per pixel: K · (1 + 2C + C(C−1)/2)."""
    return components * (1 + 2 * channels + channels * (channels - 1) // 2)


def channels_of(per_pixel, components):
    """C from the outputs per pixel (the inverse of `parameter_count`)."""
    per_component = per_pixel // components
    # C² + 3C + 2 − 2·per_component = 0
    return int(round((-3 + math.sqrt(1 + 8 * per_component)) / 2))


def coupled_means(locs, coefficients, x):
    """μ_kc on the 0–255 scale, `batch + pixels + (K, C)`, for channels `x`
    (data in [0, 1]): each loc shifted by the channels before."""
    means, pair = [], 0
    for channel in range(locs.shape[-1]):
        mean = locs[..., channel]
        for before in range(channel):
            mean = mean + coefficients[..., pair] * x[..., before]
            pair += 1
        means.append(mean)
    return LEVELS * tf.stack(means, axis=-1)


def log_prob(log_weights, locs, scales, coefficients, x, event_ndims):
    """log p(x) in nats per example of the mixture with these parameters
    (`Mixture`'s attributes) for data `x` in [0, 1]."""
    levels = tf.round(LEVELS * x)
    means = coupled_means(locs, coefficients, levels[..., None, :] / LEVELS)
    centred = levels[..., None, :] - means
    a = (centred - 0.5) / scales
    b = (centred + 0.5) / scales
    log_cdf_b = -scale_lib.softplus(-b)       # log σ(b): all mass below b
    log_survival_a = -scale_lib.softplus(a)   # log (1 − σ(a)): all mass above a
    # log(1 − e^(a−b)) with a − b = −1/s; −expm1 is exact for tiny 1/s.
    log_width = tf.math.log(-tf.math.expm1(-1.0 / scales))
    inside = log_cdf_b + log_survival_a + log_width
    level = levels[..., None, :]
    per_channel = tf.where(level <= 0.0, log_cdf_b,
                           tf.where(level >= LEVELS, log_survival_a, inside))
    per_pixel = tf.reduce_logsumexp(log_weights + tf.reduce_sum(per_channel, axis=-1), axis=-1)
    return tf.reduce_sum(per_pixel, axis=tf.range(-(event_ndims - 1), 0))


class Mixture:
    """p(x|z) for decoder outputs `params`, shaped `batch + pixels + (P,)`,
    with `event_ndims` trailing dimensions (the pixels' and the channel's)
    forming one example. Made by `DiscretizedLogisticMixture.distribution`.
    """

    def __init__(self, params, event_ndims, components, min_scale):
        params = tf.cast(params, tf.float32)
        self.event_ndims = event_ndims
        self.components = components
        self.channels = channels_of(params.shape[-1], components)
        k, c = components, self.channels
        logits, locs, scales, coefficients = tf.split(
            params, [k, k * c, k * c, k * (c * (c - 1) // 2)], axis=-1)
        shape = tf.concat([tf.shape(params)[:-1], [k, c]], 0)
        self.log_weights = tf.nn.log_softmax(logits, axis=-1)
        self.locs = tf.reshape(locs, shape)
        self.scales = min_scale + INITIAL_SCALE * positive_scale(
            tf.reshape(scales, shape), floor=0.0)
        self.coefficients = tf.tanh(tf.reshape(
            coefficients, tf.concat([tf.shape(params)[:-1], [k, c * (c - 1) // 2]], 0)))

    def _means(self, x):
        """μ_kc on the 0–255 scale for channels `x` (data in [0, 1]),
        `batch + pixels + (K, C)`: each loc shifted by the channels before."""
        return coupled_means(self.locs, self.coefficients, x)

    def log_prob(self, x):
        """log p(x|z) in nats per example (fused by XLA in a training graph:
        `keras_vae.distributions.fused`)."""
        x = tf.cast(x, tf.float32)
        parameters = (self.log_weights, self.locs, self.scales, self.coefficients)
        return fused.per_example(
            functools.partial(log_prob, event_ndims=self.event_ndims), parameters, x,
            batch_rank=len(self.locs.shape) - self.event_ndims - 1,
            event_ndims=self.event_ndims)

    def mean(self):
        """The mixture's mean in [0, 1]: Σ_k π_k m_k with m_kc = loc_kc +
        Σ_{j<c} tanh(a_kcj) · m_kj (the coupling is linear, so this is each
        component's mean before the edge bins), each clipped to [0, 1]. It is
        the exact mean wherever a component's mass lies inside the 256
        levels (within half a level for the rounding)."""
        means, pair = [], 0
        for channel in range(self.channels):
            mean = self.locs[..., channel]
            for before in range(channel):
                mean = mean + self.coefficients[..., pair] * means[before]
                pair += 1
            means.append(mean)
        components = tf.clip_by_value(tf.stack(means, axis=-1), 0.0, 1.0)
        weights = tf.exp(self.log_weights)[..., None]
        return tf.reduce_sum(weights * components, axis=-2)  # a mix of values in [0, 1]

    def sample(self, seed):
        """One image per example, in [0, 1] (levels k / 255): a component by
        its weight, then each channel in order, its mean shifted by the
        channels drawn before it. `seed`: a stateless seed (two integers)."""
        return self.draw(self.noise(seed))

    def noise(self, seed):
        """The randomness of one draw, `(gumbel, uniforms)`: a Gumbel per
        component (which component) and a uniform per channel (where in the
        chosen logistic). `seed`: a stateless seed (two integers)."""
        seeds = tf.random.split(tf.convert_to_tensor(seed, tf.int32), 2)
        shape = tf.shape(self.log_weights)
        gumbel = -tf.math.log(-tf.math.log(tf.random.stateless_uniform(
            shape, seeds[0], minval=1e-7, maxval=1.0 - 1e-7)))
        uniforms = tf.random.stateless_uniform(
            tf.concat([shape[:-1], [self.channels]], 0), seeds[1],
            minval=1e-7, maxval=1.0 - 1e-7)
        return gumbel, uniforms

    def choice(self, noise):
        """What `noise` (from `noise()`) fixes before any channel is drawn:
        the component of the largest log-weight + Gumbel (one-hot), and the
        standard logistic log(u) − log(1 − u) of each uniform."""
        gumbel, uniforms = noise
        chosen = tf.one_hot(tf.argmax(self.log_weights + gumbel, axis=-1), self.components)
        return chosen, tf.math.log(uniforms) - tf.math.log1p(-uniforms)

    def draw(self, noise, choice=None):
        """The image that `noise` (from `noise()`) picks: the component of
        the largest log-weight + Gumbel, then each channel in order, by the
        inverse of its logistic's CDF at the uniform, rounded to a level.
        `choice`: `choice(noise)` if made already (a pixel-by-pixel draw
        makes it once for all its passes)."""
        chosen, logistic_noise = self.choice(noise) if choice is None else choice
        shape = tf.shape(self.log_weights)
        drawn = []
        for channel in range(self.channels):
            x = tf.stack(drawn + [tf.zeros(shape[:-1])] * (self.channels - channel), -1)
            mean = tf.reduce_sum(chosen * self._means(x[..., None, :])[..., channel], -1)
            scale = tf.reduce_sum(chosen * self.scales[..., channel], -1)
            logistic = mean + scale * logistic_noise[..., channel]
            drawn.append(tf.clip_by_value(tf.round(logistic), 0.0, LEVELS) / LEVELS)
        return tf.stack(drawn, axis=-1)


@keras.saving.register_keras_serializable(package="keras_vae")
@likelihoods.register("discretized_logistic_mixture")
class DiscretizedLogisticMixture(likelihoods.Likelihood):
    """K discretized logistics per pixel with PixelCNN++'s channel coupling
    (module docstring), for 8-bit images scaled by 1/255.

    Args:
        components: positive int, K (PixelCNN++ uses 10).
        min_scale: floor on each logistic's scale, in 0–255 levels.
    """

    support = (0.0, 1.0)
    range_hint = "Scale 8-bit images by 1/255."
    kind = "levels"

    def __init__(self, components=5, min_scale=1e-2):  # pragma: no mutate block
        if isinstance(components, bool) or not isinstance(components, int) \
                or components < 1:
            raise ValueError("Expected a positive integer for components. Received: "
                             f"components={components!r}")
        self.components = components
        self.min_scale = likelihoods._positive("min_scale", min_scale)

    def output_channels(self, channels):
        return parameter_count(channels, self.components)

    def distribution(self, params, event_ndims):
        return Mixture(params, event_ndims, self.components, self.min_scale)

    def mean(self, params):
        return self.distribution(params, 1).mean()

    def distribution_mean(self, distribution):
        return distribution.mean()

    def sample(self, params, seed):
        """Images drawn from p(x|z) for decoder outputs `params` (not the
        mean): levels k / 255. `seed`: a stateless seed, two integers."""
        return self.distribution(params, 1).sample(seed)

    def get_config(self):
        return {"components": self.components, "min_scale": self.min_scale}
