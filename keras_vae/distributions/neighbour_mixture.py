"""The discretized logistic mixture, each pixel predicted from its causal
neighbours: p(x|z) = Π_ij p(x_ij | x_<ij, z), as a lossless codec (PNG's
filters, JPEG-XL's predictors and context model) predicts a pixel from the
pixels before it.

The mixture of `keras_vae.distributions.logistic_mixture` (PixelCNN++'s
channel coupling, the 256 levels, the edge bins), with its parameters at
pixel (i, j) changed by N causal neighbours (`NEIGHBOURS`: left, up,
up-left, up-right, then the rest within two rows and two columns; mid-grey
outside the image), as `keras_vae.distributions.neighbour_context` defines:

    loc_kc(i, j) += Σ_n Σ_d b_kcnd(i, j) · (x_d(neighbour n) − ½)
                    (every channel d; with cross_channel=False, d = c only),
    s_kc(i, j)   += Σ_m softplus(e_kcm(i, j)) · 255 |x_c(a_m) − x_c(b_m)|
                    (local_scales: the local gradients, `GRADIENTS`),

with the coefficients b and e given by the decoder per pixel (blocks of
K·C outputs after the mixture's K·(1 + 2C + C(C−1)/2), each ordered as the
locations are). It is a PixelCNN whose only autoregressive part is this
context: the decoder's network sees z alone, so

- the log-likelihood of an image is still one pass (the neighbours are the
  data's), fused with the mixture into one XLA kernel in a training step
  (`keras_vae.distributions.fused`);
- a draw and the mean go pixel by pixel. A pixel depends only on pixels
  before it, so T passes over the whole image give the exact result, T the
  longest chain of the offsets it reads (`Context.passes`: 2H + W − 2 for
  4 neighbours, 94 at 32×32 where a raster loop takes 1 024 steps): pass t
  fixes every pixel whose chain is t long (a Jacobi iteration of a
  triangular system). The randomness of a draw is fixed before the passes.
  The passes are a `tf.while_loop` (a graph holds one pass, whatever T),
  unrolled in a LiteRT file: builtin ops only, no control flow.

The mean is exact in the same sense as the factorised mixture's (each
component's mass inside the levels): the shift is linear in the neighbours,
the scales do not enter a component's mean, and a pixel's component is
drawn independently of the neighbours, so E[x_ij] is the mixture's mean
with the neighbours' means in place of their values.
"""

import copy

import keras
import tensorflow as tf

from keras_vae.distributions import (
    device_densities,
    fused,
    likelihoods,
    logistic_mixture,
    neighbour_context,
)

NEIGHBOURS = neighbour_context.NEIGHBOURS


def passes(height, width, neighbours):
    """T: the longest chain of `neighbours` causal neighbours (`NEIGHBOURS`)
    in a `height` × `width` image (a pixel without neighbours in it: 1)."""
    return neighbour_context.passes(height, width, NEIGHBOURS[:neighbours])


class NeighbourMixture(logistic_mixture.Mixture):
    """p(x|z) for decoder outputs `params`, `batch + (H, W, P)`: the mixture
    of `Mixture` with each location shifted by the pixel's neighbours and,
    with local scales, each scale widened by its local gradients
    (`neighbour_context.Context`)."""

    def __init__(self, params, event_ndims, components, min_scale, context):
        if event_ndims != 3 or params.shape[-3] is None or params.shape[-2] is None:
            raise ValueError(
                "The autoregressive_logistic_mixture likelihood predicts each pixel from "
                "its neighbours, so it needs images shaped (height, width, channels) of a "
                f"fixed size. Received data with {event_ndims} dimensions per example and "
                f"decoder outputs of shape {tuple(params.shape)}. Use "
                "likelihood='discretized_logistic_mixture' for other data.")
        params = tf.cast(params, tf.float32)
        per_pixel = params.shape[-1]
        channels = next((c for c in range(1, per_pixel + 1)
                         if output_count(c, components, context) == per_pixel), None)
        if channels is None:
            raise ValueError(
                f"Expected K·(1 + 2C + C(C−1)/2) + K·C·B decoder outputs per pixel for "
                f"K={components} components and the B blocks of {context} (N·C with "
                f"cross_channel, else N; 5 more with local_scales). Received {per_pixel}, "
                "which no number of channels C gives.")
        base = logistic_mixture.parameter_count(channels, components)
        super().__init__(params[..., :base], event_ndims, components, min_scale)
        self.context = context
        self.image_shape = tuple(params.shape[-3:-1]) + (channels,)
        shape = tf.concat([tf.shape(params)[:-1], [components, channels]], 0)
        self.context_coefficients = [
            tf.reshape(block, shape)
            for block in tf.split(params[..., base:], context.blocks(channels), axis=-1)]

    def given(self, x, scales=True, blocks=None):
        """The factorised `Mixture` of each pixel given neighbours `x`
        (`batch + (H, W, C)` in [0, 1]; the data's, or a canvas). With
        `scales=False` only the locations are shifted (for the mean, which
        the scales do not enter: fewer ops in each unrolled pass); `blocks`:
        the coefficients' `Context.prepare`, if made already."""
        if blocks is None:
            blocks = self.context.prepare(self.context_coefficients)
        shifted = copy.copy(self)
        shifted.locs, scales = self.context.apply(
            self.locs, self.scales if scales else None, blocks, x)
        shifted.scales = scales if scales is not None else self.scales
        return shifted

    def log_prob(self, x):
        """log p(x|z) = Σ_ij log p(x_ij | x's neighbours, z), one pass (the
        context and the mixture fused by XLA in a training step:
        `keras_vae.distributions.fused`)."""
        def log_prob(log_weights, locs, scales, coefficients, *rest):
            *blocks, x = rest
            locs, scales = self.context.apply(locs, scales, self.context.prepare(blocks), x)
            return logistic_mixture.log_prob(log_weights, locs, scales, coefficients, x,
                                             event_ndims=3)

        x = tf.cast(x, tf.float32)
        parameters = (self.log_weights, self.locs, self.scales, self.coefficients,
                      *self.context_coefficients)
        return fused.per_example(log_prob, parameters, x,
                                 batch_rank=len(self.locs.shape) - 4, event_ndims=3)

    def _passes(self, step):
        """The image that T applications of `step` (a canvas to every
        pixel's value given the canvas's neighbours) fix, from mid-grey: a
        `tf.while_loop`, so a graph holds one pass whatever T; unrolled in
        a LiteRT file's graph (`device_densities.device_graph`), whose int8
        conversion crashes on a loop (ai-edge-litert 2.3)."""
        canvas = tf.fill(tf.concat([tf.shape(self.log_weights)[:-1], [self.image_shape[-1]]], 0),
                         0.5)
        count = self.context.passes(*self.image_shape[:2])
        if device_densities.active():
            for _ in range(count):
                canvas = step(canvas)
            return canvas
        _, canvas = tf.while_loop(lambda i, _: i < count,
                                  lambda i, canvas: (i + 1, step(canvas)),
                                  (tf.constant(0), canvas))
        return canvas

    def mean(self):
        """E[x] in [0, 1]: each pixel's mixture mean given its neighbours'
        means (module docstring), pixel after pixel."""
        blocks = self.context.prepare(self.context_coefficients)
        return self._passes(lambda canvas: logistic_mixture.Mixture.mean(
            self.given(canvas, scales=False, blocks=blocks)))

    def draw(self, noise):
        """The image that `noise` (from `noise()`) picks, pixel after pixel,
        each drawn from its mixture given the neighbours drawn before it."""
        blocks, choice = self.context.prepare(self.context_coefficients), self.choice(noise)
        return self._passes(lambda canvas: logistic_mixture.Mixture.draw(
            self.given(canvas, blocks=blocks), noise, choice))


def output_count(channels, components, context):
    """Decoder outputs per pixel: the mixture's K · (1 + 2C + C(C−1)/2)
    and K · C for each of the context's blocks."""
    return (logistic_mixture.parameter_count(channels, components)
            + components * channels * context.blocks(channels))


@keras.saving.register_keras_serializable(package="keras_vae")
@likelihoods.register("autoregressive_logistic_mixture")
class AutoregressiveLogisticMixture(logistic_mixture.DiscretizedLogisticMixture):
    """The discretized logistic mixture with each pixel's locations shifted
    by its causal neighbours (module docstring), for 8-bit images
    `(height, width, channels)` scaled by 1/255.

    Args:
        components: positive int, K.
        neighbours: int from 1 to 12, N: how many causal neighbours
            (`NEIGHBOURS`, nearest first) shift each location.
        min_scale: floor on each logistic's scale, in 0–255 levels.
        cross_channel: shift each channel's locations by every channel of
            the neighbours (N·C blocks of coefficients), not by its own only
            (N blocks). `neighbour_context` has the formulas.
        local_scales: widen each logistic by its channel's local gradients
            (5 more blocks).
    """

    def __init__(self, components=5, neighbours=4, min_scale=1e-2,  # pragma: no mutate block
                 cross_channel=True, local_scales=True):
        super().__init__(components, min_scale)
        if isinstance(neighbours, bool) or not isinstance(neighbours, int) \
                or not 1 <= neighbours <= len(NEIGHBOURS):
            raise ValueError(
                f"Expected an integer from 1 to {len(NEIGHBOURS)} for neighbours (how many "
                f"causal neighbours predict each pixel). Received: neighbours={neighbours!r}")
        for name, value in (("cross_channel", cross_channel), ("local_scales", local_scales)):
            if not isinstance(value, bool):
                raise ValueError(f"Expected True or False for {name}. Received: "
                                 f"{name}={value!r}")
        self.neighbours = neighbours
        self.context = neighbour_context.Context(neighbours, cross_channel, local_scales)

    def check_data_shape(self, shape):
        if len(shape) != 3:
            raise ValueError(
                "The autoregressive_logistic_mixture likelihood predicts each pixel from its "
                "neighbours, so it needs images shaped (height, width, channels). Received "
                f"input_shape={tuple(shape)}. Reshape flat images to (height, width, "
                "channels), or use likelihood='discretized_logistic_mixture'.")

    def output_channels(self, channels):
        return output_count(channels, self.components, self.context)

    def distribution(self, params, event_ndims):
        return NeighbourMixture(params, event_ndims, self.components, self.min_scale,
                                self.context)

    def mean(self, params):
        return self.distribution(params, 3).mean()

    def sample(self, params, seed):
        """Images drawn from p(x|z) for decoder outputs `params`
        (`batch + (H, W, P)`), pixel after pixel: levels k / 255. `seed`: a
        stateless seed, two integers."""
        return self.distribution(params, 3).sample(seed)

    def get_config(self):
        return {**super().get_config(), "neighbours": self.neighbours,
                "cross_channel": self.context.cross_channel,
                "local_scales": self.context.local_scales}

    @classmethod
    def from_config(cls, config):
        # A config written before cross_channel and local_scales existed is
        # a model of the same-channel shift alone: its decoder's outputs.
        return cls(**{"cross_channel": False, "local_scales": False, **config})
