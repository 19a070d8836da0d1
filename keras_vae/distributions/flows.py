"""An inverse autoregressive flow (IAF) posterior (Kingma et al., 2016).

The encoder gives μ, σ and a context h; z is drawn as

    z_0 = μ + σ ⊙ ε,   then for t = 1..T:
    [m_t, s_t] = MADE_t(z_{t−1}, h),   g_t = sigmoid(s_t + b),
    z_t = g_t ⊙ z_{t−1} + (1 − g_t) ⊙ m_t,

where output i of each MADE network depends only on the dimensions before
i in that step's order (masked dense layers, Germain et al. 2015; the order
is reversed from one step to the next). So ∂z_t/∂z_{t−1} is triangular with
diagonal g_t and

    log q(z_T | x) = log N(z_0; μ, diag σ²) − Σ_t Σ_i log g_{t,i}.

The KL to the prior has no closed form: the model estimates it by Monte
Carlo with this log-density. `encode` gives the flow of μ (z at ε = 0)
and σ, the scale of z_0 before the flow.
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

from keras_vae import validation
from keras_vae.distributions.posteriors import Posterior, register
from keras_vae.distributions.scale import positive_scale

tfb, tfd = tfp.bijectors, tfp.distributions

#: b in g = sigmoid(s + b): a new step keeps about sigmoid(1) ≈ 0.73 of z.
GATE_BIAS = 1.0


def made_masks(latent_dim, hidden_units, reverse=False):
    """`(input → hidden, hidden → output)` 0/1 masks of a one-hidden-layer
    MADE whose two outputs per dimension (m and s) see only the dimensions
    before it in the order `1..d` (or `d..1` when `reverse`)."""
    order = np.arange(latent_dim, 0, -1) if reverse else np.arange(1, latent_dim + 1)
    hidden = np.arange(hidden_units) % max(1, latent_dim - 1) + 1
    to_hidden = (hidden[None, :] >= order[:, None]).astype("float32")
    to_output = (order[None, :] > hidden[:, None]).astype("float32")
    return to_hidden, np.concatenate([to_output, to_output], axis=1)


@keras.saving.register_keras_serializable(package="keras_vae")
class AutoregressiveNetwork(keras.layers.Layer):
    """MADE: z `(..., d)` and a context h `(batch, c)` → (m, s), each
    `(..., d)`, output i a function of h and of z before i only."""

    def __init__(self, latent_dim, hidden_units, context_size, reverse=False, **kwargs):  # noqa: E501  # pragma: no mutate block
        super().__init__(**kwargs)
        self.latent_dim, self.hidden_units = latent_dim, hidden_units
        self.context_size, self.reverse = context_size, reverse
        masks = made_masks(latent_dim, hidden_units, reverse)
        self._masks = [ops.convert_to_tensor(m) for m in masks]

    def build(self, input_shape=None):
        d, hidden, context = self.latent_dim, self.hidden_units, self.context_size
        dense = keras.initializers.GlorotUniform()
        self.kernel = self.add_weight(shape=(d, hidden), initializer=dense, name="kernel")
        self.context_kernel = self.add_weight(shape=(context, hidden), initializer=dense,
                                              name="context_kernel")
        self.bias = self.add_weight(shape=(hidden,), initializer="zeros", name="bias")
        # Small outputs at first: m ≈ s ≈ 0, so every step starts as
        # z_t ≈ sigmoid(GATE_BIAS) · z_{t−1}.
        self.out_kernel = self.add_weight(
            shape=(hidden, 2 * d), name="out_kernel",
            initializer=keras.initializers.RandomNormal(stddev=0.01))
        self.out_bias = self.add_weight(shape=(2 * d,), initializer="zeros", name="out_bias")
        self.built = True

    def call(self, z, context):
        hidden = ops.relu(ops.matmul(z, self.kernel * self._masks[0])
                          + ops.matmul(context, self.context_kernel) + self.bias)
        out = ops.matmul(hidden, self.out_kernel * self._masks[1]) + self.out_bias
        return out[..., : self.latent_dim], out[..., self.latent_dim:]

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim,
                "hidden_units": self.hidden_units, "context_size": self.context_size,
                "reverse": self.reverse}


class IAFStep(tfb.Bijector):
    """One step z_t = g ⊙ z_{t−1} + (1 − g) ⊙ m for a context h. The inverse
    solves one more dimension per pass of the network (d passes); TFP's
    bijector cache skips it for codes this step produced."""

    def __init__(self, network, context):  # pragma: no mutate block
        super().__init__(forward_min_event_ndims=1, name="iaf_step")
        self._network, self._context = network, context

    def _gate(self, x):
        m, s = self._network(x, self._context)
        return m, s + GATE_BIAS

    def _forward(self, x):
        m, s = self._gate(x)
        g = tf.sigmoid(s)
        return g * x + (1.0 - g) * m

    def _inverse(self, y):
        x = tf.zeros_like(y)
        for _ in range(self._network.latent_dim):
            m, s = self._gate(x)
            g = tf.sigmoid(s)
            x = (y - (1.0 - g) * m) / g
        return x

    def _forward_log_det_jacobian(self, x):
        return tf.reduce_sum(tf.math.log_sigmoid(self._gate(x)[1]), axis=-1)


@keras.saving.register_keras_serializable(package="keras_vae")
@register("iaf")
class InverseAutoregressiveFlow(Posterior, keras.layers.Layer):
    """q(z|x): a diagonal Gaussian followed by `steps` IAF steps.

    Args:
        steps: T, the number of autoregressive steps.
        hidden_units: the width of each step's MADE network.
        context_size: the size of the context h the encoder adds to its
            outputs (which are μ, σ before softplus, then h).
    """

    loc_is_mean = False  # `loc_and_scale` gives the flow of μ

    def __init__(self, steps=2, hidden_units=64, context_size=16, **kwargs):  # noqa: E501  # pragma: no mutate block
        keras.layers.Layer.__init__(self, **kwargs)
        self.steps = validation.positive_int("steps", steps)
        self.hidden_units = validation.positive_int("hidden_units", hidden_units)
        self.context_size = validation.positive_int("context_size", context_size)
        self.networks = []

    def params_size(self, latent_dim):
        return 2 * latent_dim + self.context_size

    def build(self, latent_dim):
        """Called by the VAE with its latent size: makes the step networks."""
        self.latent_dim = int(latent_dim)
        self.networks = [AutoregressiveNetwork(self.latent_dim, self.hidden_units,
                                               self.context_size, reverse=t % 2 == 1,
                                               name=f"iaf_step_{t}")
                         for t in range(self.steps)]
        for network in self.networks:
            network.build()
        self.built = True

    def get_build_config(self):
        return None  # the VAE builds it, also when loading

    def distribution(self, params):
        d = self.latent_dim
        loc, raw_scale, context = params[..., :d], params[..., d:2 * d], params[..., 2 * d:]
        base = tfd.Independent(tfd.Normal(loc, positive_scale(raw_scale)), 1)
        # tfb.Chain applies its last bijector first: step 1, then 2, ...
        flow = tfb.Chain([IAFStep(n, context) for n in reversed(self.networks)])
        return tfd.TransformedDistribution(base, flow)

    def reparameterize(self, distribution, eps):
        base = distribution.distribution.distribution
        return distribution.bijector.forward(base.loc + base.scale * eps)

    def loc_and_scale(self, distribution):
        base = distribution.distribution.distribution
        return distribution.bijector.forward(base.loc), base.scale

    def kl_divergence(self, distribution, prior):
        raise NotImplementedError("An IAF posterior's KL is a Monte-Carlo estimate.")

    def get_config(self):
        return {"steps": self.steps, "hidden_units": self.hidden_units,
                "context_size": self.context_size}
