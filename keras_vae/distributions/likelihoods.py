"""Likelihoods p(x|z): turn the decoder's outputs into a TFP distribution.

A likelihood knows how many decoder outputs it needs per data value
(`params_size`), so no network hard-codes the image size. The decoder's
outputs arrive shaped `batch_shape + event_shape[:-1] + (channels * params_size,)`
and each likelihood splits the last axis into `params_size` blocks of
`channels` values.

Mathematical details:

- `Bernoulli`: p(x|z) = Π x̂^x (1 − x̂)^(1−x) with x̂ = sigmoid(logits). For
  grey levels in [0, 1] this is the binary cross-entropy the course notes use.
- `Gaussian` with a fixed variance c = scale²:
  −log p(x|z) = C · ‖x − μ(z)‖² + (D/2) · log(2πc), with the balancing constant
  C = 1 / (2c). A small c weighs reconstruction more against the KL.
- `GaussianLearnedScale`: the decoder also outputs a per-pixel scale
  σ(z) = min_scale + softplus(raw + softplus⁻¹(1)), which starts near 1.
"""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae import registry
from keras_vae.distributions import bernoulli_sum
from keras_vae.distributions import scale as scale_lib
from keras_vae.distributions.scale import positive_scale

tfd = tfp.distributions

_PACKAGE = "keras_vae"


def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(
            f"Expected a positive number for {name}. Received: {name}={value!r}"
        )
    return float(value)


class Likelihood(registry.Configurable):
    """Base class: a recipe from decoder outputs to p(x|z).

    Subclasses set `params_size` and implement `_distribution(blocks)`, where
    `blocks` is a list of `params_size` tensors each shaped like the data.
    A likelihood that couples the channels of a position (the mixture of
    `keras_vae.distributions.logistic_mixture`) overrides `output_channels`
    and `distribution` instead.
    """

    params_size = 1
    #: The closed interval that data must lie in, and how to fix data outside.
    support = (-math.inf, math.inf)
    range_hint = ""
    #: What log p(x|z) measures, which decides the bits-per-dimension
    #: convention (`keras_vae.evaluation.bits_convention`): `"binary"`, a
    #: probability of binary data (a cross-entropy on grey levels);
    #: `"levels"`, a probability of the 256 levels of 8-bit data;
    #: `"density"`, a density on data in [0, 1]; `"table"`, a density on a
    #: table's columns in their units (no bits per dimension).
    kind = "density"

    def distribution(self, params, event_ndims):
        """Return p(x|z) as a distribution with `event_ndims` event dimensions.

        Args:
            params: float tensor, decoder outputs shaped
                `batch_shape + event_shape[:-1] + (channels * params_size,)`.
            event_ndims: number of trailing dimensions that form one example.
        """
        return tfd.Independent(
            self._distribution(self._blocks(params)),
            reinterpreted_batch_ndims=event_ndims,
        )

    def check_data_shape(self, shape):
        """Raise `ValueError` if data of `shape` (one example's) cannot be
        modelled; any shape can, unless a likelihood needs a layout."""

    def output_channels(self, channels):
        """The decoder's outputs per position for data with `channels` values
        there (the last axis): `channels * params_size`."""
        return channels * self.params_size

    def encoder_inputs(self, x):
        """What the encoder sees of data `x`: `x` itself, unless a likelihood
        models it in other units (`keras_vae.distributions.standardized`)."""
        return x

    def log_prob(self, distribution, x):
        """log p(x|z) of data `x` under `distribution` (from `distribution()`)."""
        return distribution.log_prob(x)

    def mean(self, params):
        """The mean of p(x|z) in data space, shaped like the data."""
        return self._distribution(self._blocks(params)).mean()

    def distribution_mean(self, distribution):
        """The data-space mean of a distribution from `distribution()`.

        Equals `mean(params)` for the params that made it.
        """
        return distribution.mean()

    def _blocks(self, params):
        # Distributions always compute in float32, also under mixed precision.
        params = tf.cast(params, tf.float32)
        return tf.split(params, self.params_size, axis=-1)

    def range_error(self, received):
        """The message for data outside `support`; `received` describes it."""
        low, high = self.support
        return (
            f"The {type(self).__name__} likelihood needs data in "
            f"[{low:g}, {high:g}]. Received {received}. {self.range_hint}"
        )


#: The named likelihoods: `names()`, `register(name)` (a class decorator) and `get`.
REGISTRY = registry.Registry("likelihood", Likelihood)
register = REGISTRY.register
names = REGISTRY.names


def get(identifier):
    """Resolve a likelihood from a name, a config dict or an instance."""
    return REGISTRY.get(identifier)


@keras.saving.register_keras_serializable(package=_PACKAGE)
@register("bernoulli")
class Bernoulli(Likelihood):
    """Bernoulli likelihood on logits, for data in [0, 1].

    Grey levels are allowed (the log-probability is then the binary
    cross-entropy); binarized data gives a proper likelihood in nats.
    """

    params_size = 1
    support = (0.0, 1.0)
    range_hint = (
        "Rescale the data (for 8-bit images, divide by 255) or use "
        "likelihood='gaussian'."
    )
    kind = "binary"

    def _distribution(self, blocks):
        return tfd.Bernoulli(logits=blocks[0], dtype=tf.float32)

    def log_prob(self, distribution, x):
        """Σ x·l − softplus(l) over the pixels, for logits l: TFP's value
        (−sigmoid_cross_entropy), in fewer passes over the pixels, without
        broadcasting x to the shape of l first, and with one logarithm per
        group of pixels (`bernoulli_sum.log_prob_sum`; the importance-sampled
        likelihood decodes thousands of codes per image)."""
        logits = distribution.distribution.logits
        return bernoulli_sum.log_prob_sum(logits, tf.cast(x, logits.dtype),
                                          len(distribution.event_shape))


@keras.saving.register_keras_serializable(package=_PACKAGE)
@register("gaussian")
class Gaussian(Likelihood):
    """Gaussian likelihood with a fixed scale σ (variance c = σ²).

    Args:
        scale: positive float, the fixed standard deviation of every pixel.
            The course notes' balancing constant is
            `C = 1 / (2 * scale**2)` (see `balancing_constant`).
    """

    params_size = 1

    def __init__(self, scale=0.1):  # pragma: no mutate block
        self.scale = _positive("scale", scale)

    @property
    def balancing_constant(self):
        """C = 1 / (2c): the weight on ‖x − μ‖² in −log p(x|z)."""
        return 1.0 / (2.0 * self.scale**2)

    def _distribution(self, blocks):
        return tfd.Normal(loc=blocks[0], scale=self.scale)

    def get_config(self):
        return {"scale": self.scale}


@keras.saving.register_keras_serializable(package=_PACKAGE)
@register("gaussian_learned_scale")
class GaussianLearnedScale(Likelihood):
    """Gaussian likelihood whose per-pixel scale the decoder outputs.

    Args:
        min_scale: positive float, a floor on σ that keeps log p(x|z) finite.
    """

    params_size = 2

    def __init__(self, min_scale=1e-2):  # pragma: no mutate block
        self.min_scale = _positive("min_scale", min_scale)

    def _distribution(self, blocks):
        loc, raw_scale = blocks
        scale = positive_scale(raw_scale, floor=self.min_scale)
        return tfd.Normal(loc=loc, scale=scale)

    def get_config(self):
        return {"min_scale": self.min_scale}


@keras.saving.register_keras_serializable(package=_PACKAGE)
@register("continuous_bernoulli")
class ContinuousBernoulli(Bernoulli):
    """The continuous Bernoulli (Loaiza-Ganem & Cunningham, 2019) on logits.

    A proper density on [0, 1] for grey levels, where the Bernoulli's
    cross-entropy lacks the normalising constant C(λ); its mean is not λ.
    """

    kind = "density"

    def _distribution(self, blocks):
        return tfd.ContinuousBernoulli(logits=blocks[0], dtype=tf.float32)

    def log_prob(self, distribution, x):
        """TFP's density, with the normalising constant (not the Bernoulli's
        cross-entropy)."""
        return Likelihood.log_prob(self, distribution, x)


@keras.saving.register_keras_serializable(package=_PACKAGE)
@register("discretized_logistic")
class DiscretizedLogistic(Likelihood):
    """Discretized logistic for 8-bit images (Salimans et al., 2017).

    Data in [0, 1] holds the levels k / 255. The probability of level k is
    the logistic mass of [k − ½, k + ½] on the 0–255 scale, with all the mass
    below 0.5 on level 0 and above 254.5 on level 255. The decoder outputs
    the loc (in [0, 1] units) and a pre-softplus scale.

    Args:
        min_scale: floor on the scale, in 0–255 levels.
    """

    params_size = 2
    support = (0.0, 1.0)
    range_hint = "Scale 8-bit images by 1/255."
    kind = "levels"

    def __init__(self, min_scale=1e-2):  # pragma: no mutate block
        self.min_scale = _positive("min_scale", min_scale)

    def _distribution(self, blocks):
        loc, raw_scale = blocks
        scale = positive_scale(raw_scale, floor=self.min_scale)
        # QuantizedDistribution puts P(Y = k) on (k − 1, k]; shifting the
        # logistic down by ½ makes that the bin (k − ½, k + ½] around k.
        logistic = tfd.Logistic(loc=255.0 * loc - 0.5, scale=scale)
        return tfd.QuantizedDistribution(logistic, low=0.0, high=255.0)

    def log_prob(self, distribution, x):
        """The log mass of each level, summed over the example, written out
        in log space with softplus (exact in the far tails, where TFP's
        QuantizedDistribution, converted to LiteRT, underflows to −inf)."""
        logistic = distribution.distribution.distribution
        level = tf.round(255.0 * tf.cast(x, tf.float32))
        # Level k holds (k − 1, k] of the logistic shifted down by ½.
        a = (level - 1.0 - logistic.loc) / logistic.scale
        b = (level - logistic.loc) / logistic.scale
        log_below_b, log_above_a = -scale_lib.softplus(-b), -scale_lib.softplus(a)
        # log(σ(b) − σ(a)) = log σ(b) + log(1 − σ(a)) + log(1 − e^(a−b)).
        inside = log_below_b + log_above_a + tf.math.log(-tf.math.expm1(-1.0 / logistic.scale))
        per_value = tf.where(level <= 0.0, log_below_b,
                             tf.where(level >= 255.0, log_above_a, inside))
        axes = tf.range(-distribution.reinterpreted_batch_ndims, 0)
        return tf.reduce_sum(per_value, axis=axes)

    def mean(self, params):
        loc, _ = self._blocks(params)
        return tf.clip_by_value(loc, 0.0, 1.0)

    def distribution_mean(self, distribution):
        # TFP's QuantizedDistribution has no mean: undo the shift of the
        # logistic's loc made in `_distribution`, as `mean(params)` reads it.
        logistic = distribution.distribution.distribution
        return tf.clip_by_value((logistic.loc + 0.5) / 255.0, 0.0, 1.0)

    def get_config(self):
        return {"min_scale": self.min_scale}
