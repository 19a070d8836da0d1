"""The positive scale shared by posteriors, priors and likelihoods.

Mathematical details:

    σ = floor + softplus(raw + softplus⁻¹(1))

is about 1 at raw = 0, never below `floor` (which keeps ln σ² finite) and
never overflows, unlike exp(raw).
"""

import math

import tensorflow as tf

# A floor on the scale keeps ln σ² finite; softplus cannot overflow.
MIN_SCALE = 1e-4
SOFTPLUS_INVERSE_OF_ONE = math.log(math.e - 1.0)


def positive_scale(raw, floor=MIN_SCALE):
    """floor + softplus(raw + softplus⁻¹(1)): about 1 at raw = 0, never below floor."""
    return floor + tf.math.softplus(raw + SOFTPLUS_INVERSE_OF_ONE)


def softplus(x):
    """log(1 + eˣ) as max(x, 0) + log1p(e^−|x|): finite for any finite x,
    also in a LiteRT file, whose converter may write tf.math.softplus as
    log(eˣ + 1), which overflows to inf above x ≈ 88."""
    return tf.maximum(x, 0.0) + tf.math.log1p(tf.exp(-tf.abs(x)))
