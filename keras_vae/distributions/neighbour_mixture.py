"""The discretized logistic mixture, each pixel predicted from its causal
neighbours: p(x|z) = Π_ij p(x_ij | x_<ij, z), as a lossless codec (PNG's
filters, JPEG-XL's predictors) predicts a pixel from the pixels before it.

The mixture of `keras_vae.distributions.logistic_mixture` (PixelCNN++'s
channel coupling, the 256 levels, the edge bins), with one change: the
location of component k, channel c at pixel (i, j) is shifted by the same
channel of N causal neighbours (`NEIGHBOURS`: left, up, up-left, up-right,
then the rest within two rows and two columns; mid-grey outside the image),

    loc_kc(i, j) += Σ_n b_kcn(i, j) · (x_c(neighbour n) − ½),

with the coefficients b given by the decoder per pixel (K·C·N more
outputs after the mixture's K·(1 + 2C + C(C−1)/2): N blocks of K·C, one per
neighbour, each ordered as the locations are). It is a PixelCNN whose
only autoregressive part is this linear shift: the decoder's network sees z
alone, so

- the log-likelihood of an image is still one pass (the neighbours are the
  data's), and a training step costs about what the factorised mixture's
  does (K·C·N more outputs, N shifts);
- a draw and the mean go pixel by pixel. A pixel depends only on pixels
  before it, so T passes over the whole image give the exact result, T the
  longest chain of neighbours in the image (`passes`: 2H + W − 2 for 4
  neighbours, 94 at 32×32 where a raster loop takes 1 024 steps): pass t
  fixes every pixel whose chain is t long (a Jacobi iteration of a
  triangular system). The randomness of a draw is fixed before the passes.
  The passes are a `tf.while_loop` (a graph holds one pass, whatever T),
  unrolled in a LiteRT file: builtin ops only, no control flow.

The mean is exact in the same sense as the factorised mixture's (each
component's mass inside the levels): the shift is linear in the neighbours
and a pixel's component is drawn independently of them, so E[x_ij] is the
mixture's mean with the neighbours' means in place of their values.
"""

import copy
import functools

import keras
import numpy as np
import tensorflow as tf

from keras_vae.distributions import device_densities, likelihoods, logistic_mixture

#: Causal neighbours as (row, column) offsets, nearest first.
NEIGHBOURS = ((0, -1), (-1, 0), (-1, -1), (-1, 1),
              (0, -2), (-1, -2), (-1, 2), (-2, -2), (-2, -1), (-2, 0), (-2, 1), (-2, 2))


@functools.cache
def passes(height, width, neighbours):
    """T: the longest chain of `neighbours` causal neighbours in a
    `height` × `width` image (a pixel without neighbours in the image: 1)."""
    depth = np.zeros((height, width), int)
    for i in range(height):
        for j in range(width):
            before = [depth[i + dy, j + dx] for dy, dx in NEIGHBOURS[:neighbours]
                      if 0 <= i + dy and 0 <= j + dx < width]
            depth[i, j] = 1 + max(before, default=0)
    return int(depth.max())


def neighbour_values(x, neighbours):
    """A list of N images, `batch + (H, W, C)`: each channel's n-th causal
    neighbour (`NEIGHBOURS`) in images `x` (in [0, 1]), centred (0 outside)."""
    rank = len(x.shape)
    padded = tf.pad(x - 0.5, [[0, 0]] * (rank - 3) + [[2, 0], [2, 2], [0, 0]])
    h, w = x.shape[-3], x.shape[-2]
    return [padded[..., 2 + dy:2 + dy + h, 2 + dx:2 + dx + w, :]
            for dy, dx in NEIGHBOURS[:neighbours]]


class NeighbourMixture(logistic_mixture.Mixture):
    """p(x|z) for decoder outputs `params`, `batch + (H, W, P)`: the mixture
    of `Mixture` with each location shifted by the pixel's neighbours."""

    def __init__(self, params, event_ndims, components, min_scale, neighbours):
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
                         if output_count(c, components, neighbours) == per_pixel), None)
        if channels is None:
            raise ValueError(
                f"Expected K·(1 + 2C + C(C−1)/2) + K·C·N decoder outputs per pixel for "
                f"K={components} components and N={neighbours} neighbours. Received "
                f"{per_pixel}, which no number of channels C gives.")
        base = logistic_mixture.parameter_count(channels, components)
        super().__init__(params[..., :base], event_ndims, components, min_scale)
        self.neighbours = neighbours
        self.image_shape = tuple(params.shape[-3:-1]) + (channels,)
        # N blocks of K·C: block n holds b_kcn (at most rank 5 anywhere, as
        # LiteRT's XNNPack delegate needs).
        shape = tf.concat([tf.shape(params)[:-1], [components, channels]], 0)
        self.neighbour_coefficients = [
            tf.reshape(block, shape)
            for block in tf.split(params[..., base:], neighbours, axis=-1)]

    def given(self, x):
        """The factorised `Mixture` of each pixel given neighbours `x`
        (`batch + (H, W, C)` in [0, 1]; the data's, or a canvas)."""
        shifted = copy.copy(self)
        values = neighbour_values(tf.cast(x, tf.float32), self.neighbours)
        for coefficients, value in zip(self.neighbour_coefficients, values, strict=True):
            shifted.locs = shifted.locs + coefficients * value[..., None, :]
        return shifted

    def log_prob(self, x):
        """log p(x|z) = Σ_ij log p(x_ij | x's neighbours, z), one pass."""
        return logistic_mixture.Mixture.log_prob(self.given(x), x)

    def _passes(self, step):
        """The image that T applications of `step` (a canvas to every
        pixel's value given the canvas's neighbours) fix, from mid-grey: a
        `tf.while_loop`, so a graph holds one pass whatever T; unrolled in
        a LiteRT file's graph (`device_densities.device_graph`), whose int8
        conversion crashes on a loop (ai-edge-litert 2.3)."""
        canvas = tf.fill(tf.concat([tf.shape(self.log_weights)[:-1], [self.image_shape[-1]]], 0),
                         0.5)
        count = passes(*self.image_shape[:2], self.neighbours)
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
        return self._passes(lambda canvas: logistic_mixture.Mixture.mean(self.given(canvas)))

    def draw(self, noise):
        """The image that `noise` (from `noise()`) picks, pixel after pixel,
        each drawn from its mixture given the neighbours drawn before it."""
        return self._passes(
            lambda canvas: logistic_mixture.Mixture.draw(self.given(canvas), noise))


def output_count(channels, components, neighbours):
    """Decoder outputs per pixel: the mixture's K · (1 + 2C + C(C−1)/2)
    and K · C · N neighbour coefficients."""
    return (logistic_mixture.parameter_count(channels, components)
            + components * channels * neighbours)


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
    """

    def __init__(self, components=5, neighbours=4, min_scale=1e-2):  # pragma: no mutate block
        super().__init__(components, min_scale)
        if isinstance(neighbours, bool) or not isinstance(neighbours, int) \
                or not 1 <= neighbours <= len(NEIGHBOURS):
            raise ValueError(
                f"Expected an integer from 1 to {len(NEIGHBOURS)} for neighbours (how many "
                f"causal neighbours predict each pixel). Received: neighbours={neighbours!r}")
        self.neighbours = neighbours

    def check_data_shape(self, shape):
        if len(shape) != 3:
            raise ValueError(
                "The autoregressive_logistic_mixture likelihood predicts each pixel from its "
                "neighbours, so it needs images shaped (height, width, channels). Received "
                f"input_shape={tuple(shape)}. Reshape flat images to (height, width, "
                "channels), or use likelihood='discretized_logistic_mixture'.")

    def output_channels(self, channels):
        return output_count(channels, self.components, self.neighbours)

    def distribution(self, params, event_ndims):
        return NeighbourMixture(params, event_ndims, self.components, self.min_scale,
                                self.neighbours)

    def mean(self, params):
        return self.distribution(params, 3).mean()

    def sample(self, params, seed):
        """Images drawn from p(x|z) for decoder outputs `params`
        (`batch + (H, W, P)`), pixel after pixel: levels k / 255. `seed`: a
        stateless seed, two integers."""
        return self.distribution(params, 3).sample(seed)

    def get_config(self):
        return {**super().get_config(), "neighbours": self.neighbours}
