"""Priors p(z): pluggable objects the VAE takes by name or instance.

A prior is a Keras layer (so that learnable priors can own weights) whose
`distribution()` returns a TFP distribution with event shape `[latent_dim]`.
The model calls `attach(vae)` and then `build(latent_dim)` before use. The
KL term uses TFP's closed form where one exists (standard normal, learnable
Gaussian) and a Monte-Carlo estimate otherwise (mixtures, VampPrior).

The "prior hole" of the course notes: regions that are likely under p(z)
but that no encoded example reaches, so the decoder never learnt them and
samples from there look like nothing. Learnable priors move p(z) towards the
aggregate posterior (the codes the data actually uses); the VampPrior makes
it a mixture of posteriors, which fills the hole by construction.
"""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae import registry, validation
from keras_vae.distributions import device_densities
from keras_vae.distributions.scale import positive_scale as _positive_scale

tfd = tfp.distributions


class Prior(keras.layers.Layer):
    """Base class for priors over the latent code z.

    Subclasses implement `distribution()`, which returns p(z) with event
    shape `[latent_dim]`; `self.latent_dim` is set by `build(latent_dim)`.
    The model asks `log_prob(z)` for Monte-Carlo KL terms, IWAE weights and
    likelihood estimates; subclasses may override it with a faster form
    (the mixtures do).
    """

    def attach(self, vae):
        """Called by the VAE first; priors that need its encoder keep it."""

    def build(self, latent_dim):
        self.latent_dim = int(latent_dim)

    def get_build_config(self):
        # The VAE builds its prior (after `attach`), also when loading.
        return None

    def sample(self, num_samples, seed=None):
        """Draw `num_samples` latent codes, shape `(num_samples, latent_dim)`.

        The built-in priors also take `temperature`, the scale of the noise
        of each draw; this generic draw from the TFP distribution has none
        (`keras_vae.models.generation.draw` refuses one, naming the fix)."""
        return self.distribution().sample(num_samples, seed=seed)

    def log_prob(self, z):
        """log p(z) for codes `z` of shape `(..., latent_dim)`."""
        return self.distribution().log_prob(z)


def diagonal_mixture_log_prob(z, locs, scales, logits):
    """log Σ_k softmax(logits)_k N(z; μ_k, diag σ_k²) by two matrix products.

    TFP's `MixtureSameFamily.log_prob` builds a `(..., K, latent_dim)`
    tensor (a 500-component VampPrior at 250 × 100 codes: 625 million
    numbers); expanding the quadratic form

        Σ_d (z_d − μ_kd)² / σ_kd² = z² · (1/σ_k²) − 2 z · (μ_k/σ_k²) + Σ_d μ_kd²/σ_kd²

    needs only `(..., K)`. The three terms are large and nearly cancel when
    z is close to μ_k and σ_k is small (in float32, means of size 3 at scale
    0.002 lose 3 nats), so the expansion is computed in float64, where the
    same case stays within 1e-6 nats of the direct form; the result is cast
    back to the dtype of `z`.

    Args:
        z: `(..., latent_dim)` codes.
        locs, scales: `(K, latent_dim)` component means and scales.
        logits: `(K,)` unnormalised mixture weights.
    """
    dtype = z.dtype
    z, locs, scales, logits = (tf.cast(t, tf.float64) for t in (z, locs, scales, logits))
    latent_dim = tf.shape(z)[-1]
    flat = tf.reshape(z, [-1, latent_dim])
    precision = tf.math.reciprocal(tf.square(scales))
    quadratic = (tf.matmul(tf.square(flat), precision, transpose_b=True)
                 - 2.0 * tf.matmul(flat, locs * precision, transpose_b=True)
                 + tf.reduce_sum(tf.square(locs) * precision, axis=1))
    log_normalizer = (tf.reduce_sum(tf.math.log(scales), axis=1)
                      + 0.5 * tf.cast(latent_dim, tf.float64) * math.log(2.0 * math.pi))
    log_components = (-0.5 * tf.maximum(quadratic, 0.0) - log_normalizer
                      + tf.nn.log_softmax(logits))
    result = tf.reduce_logsumexp(log_components, axis=1)
    return tf.cast(tf.reshape(result, tf.shape(z)[:-1]), dtype)


#: The named priors: `names()`, `register(name)` (a class decorator) and `get`.
REGISTRY = registry.Registry("prior", Prior)
register = REGISTRY.register
names = REGISTRY.names


def get(identifier):
    """Resolve a prior from a name, a config dict or an instance."""
    return REGISTRY.get(identifier)


@keras.saving.register_keras_serializable(package="keras_vae")
@register("standard_normal")
class StandardNormal(Prior):
    """The standard normal prior p(z) = N(0, I) of the course notes.

    With a diagonal Gaussian posterior the KL has the closed form
    ½ Σ (σ² + μ² − 1 − ln σ²).
    """

    def distribution(self):
        zeros = tf.zeros([self.latent_dim], dtype=tf.float32)
        return tfd.Independent(
            tfd.Normal(loc=zeros, scale=1.0), reinterpreted_batch_ndims=1
        )

    def sample(self, num_samples, seed=None, temperature=1.0):
        return temperature * _standard_normal(num_samples, self.latent_dim, seed)


def component_draws(num_samples, logits, latent_dim, seed, temperature=1.0):
    """`(k, eps)`: a mixture component index per sample and N(0, T² I)
    noise, T = `temperature`.

    Unseeded draws use `tf.random.categorical` and `tf.random.normal`,
    which LiteRT runs as builtin ops; seeded ones their stateless forms.
    """
    n = tf.cast(num_samples, tf.int32)
    if seed is None:
        k = tf.random.categorical(logits[None], n, dtype=tf.int32)[0]
    else:
        category_seed, seed = tf.unstack(tf.random.experimental.stateless_split(seed))
        k = tf.random.stateless_categorical(logits[None], n, seed=category_seed,
                                            dtype=tf.int32)[0]
    return k, temperature * _standard_normal(n, latent_dim, seed)


def _standard_normal(num_samples, latent_dim, seed):
    shape = tf.stack([tf.cast(num_samples, tf.int32), latent_dim])
    if seed is None:
        # A stateful draw: LiteRT has it as a builtin op, so exported
        # sampling runs on devices (stateless ops would need Flex).
        return tf.random.normal(shape)
    return tf.random.stateless_normal(shape, seed=seed)


@keras.saving.register_keras_serializable(package="keras_vae")
@register("learnable_gaussian")
class LearnableGaussian(Prior):
    """A diagonal Gaussian p(z) = N(μ, diag σ²) with learnt μ and σ.

    Starts as the standard normal; the KL keeps its closed form.
    """

    def build(self, latent_dim):
        super().build(latent_dim)
        self.loc = self.add_weight(shape=(self.latent_dim,), initializer="zeros", name="loc")
        self.raw_scale = self.add_weight(shape=(self.latent_dim,), initializer="zeros",
                                         name="raw_scale")

    def distribution(self):
        return tfd.Independent(
            tfd.Normal(loc=self.loc, scale=_positive_scale(self.raw_scale)),
            reinterpreted_batch_ndims=1,
        )

    def sample(self, num_samples, seed=None, temperature=1.0):
        # μ + σ·ε with the standard normal's draw, so LiteRT can run it.
        eps = temperature * _standard_normal(num_samples, self.latent_dim, seed)
        return self.loc + _positive_scale(self.raw_scale) * eps


@keras.saving.register_keras_serializable(package="keras_vae")
@register("mixture_of_gaussians")
class MixtureOfGaussians(Prior):
    """A learnable mixture of K diagonal Gaussians: p(z) = Σ_k π_k N(μ_k, σ_k²).

    The course notes' intuition of a multimodal latent space, one mode per
    kind of example. The KL is estimated by Monte Carlo.

    Args:
        num_components: K, a positive int.
    """

    def __init__(self, num_components=10, **kwargs):  # pragma: no mutate block
        super().__init__(**kwargs)
        self.num_components = validation.positive_int("num_components", num_components)

    def build(self, latent_dim):
        super().build(latent_dim)
        k, d = self.num_components, self.latent_dim
        # Spread the means so that the components start apart.
        self.locs = self.add_weight(shape=(k, d), name="locs",
                                    initializer=keras.initializers.RandomNormal(stddev=1.0))
        self.raw_scales = self.add_weight(shape=(k, d), initializer="zeros", name="raw_scales")
        self.logits = self.add_weight(shape=(k,), initializer="zeros", name="logits")

    def distribution(self):
        components = tfd.Independent(
            tfd.Normal(loc=self.locs, scale=_positive_scale(self.raw_scales)),
            reinterpreted_batch_ndims=1,
        )
        return tfd.MixtureSameFamily(tfd.Categorical(logits=self.logits), components)

    def log_prob(self, z):
        mixture = (device_densities.diagonal_mixture if device_densities.active()
                   else diagonal_mixture_log_prob)
        return mixture(z, self.locs, _positive_scale(self.raw_scales), self.logits)

    def sample(self, num_samples, seed=None, temperature=1.0):
        # μ_k + σ_k·ε for a drawn component k (builtin ops on LiteRT).
        k, eps = component_draws(num_samples, self.logits, self.latent_dim, seed, temperature)
        scales = _positive_scale(self.raw_scales)
        return tf.gather(self.locs, k) + tf.gather(scales, k) * eps

    def get_config(self):
        return {**super().get_config(), "num_components": self.num_components}


@keras.saving.register_keras_serializable(package="keras_vae")
@register("vamp")
class VampPrior(Prior):
    """The VampPrior (Tomczak & Welling, 2018): p(z) = (1/K) Σ_k q(z | u_k).

    A mixture of the model's own posteriors at K learnt pseudo-inputs u_k,
    which puts prior mass where the encoder puts codes and so targets the
    prior hole directly. The KL is estimated by Monte Carlo.

    Args:
        num_components: K, the number of pseudo-inputs.
    """

    def __init__(self, num_components=50, **kwargs):  # pragma: no mutate block
        super().__init__(**kwargs)
        self.num_components = validation.positive_int("num_components", num_components)
        self._posterior = None

    def attach(self, vae):
        # A bound method, not the model: Keras must not track the VAE twice.
        self._posterior = vae.posterior
        self._data_shape = tuple(vae.data_shape)
        # The pseudo-inputs stay in the range of the data the likelihood takes.
        self._support = tuple(vae.likelihood.support)
        self._reparameterize = vae.posterior_family.reparameterize

    def build(self, latent_dim):
        super().build(latent_dim)
        self.pseudo_inputs = self.add_weight(
            shape=(self.num_components,) + self._data_shape, name="pseudo_inputs",
            initializer=keras.initializers.RandomUniform(0.0, 1.0))

    def _components(self, indices=None):
        """q(z|u_k) for every pseudo-input, or for the ones at `indices`."""
        inputs = self.pseudo_inputs
        if indices is not None:
            inputs = tf.gather(inputs, indices)
        # Clipped to the data range, as Tomczak & Welling's hardtanh does;
        # unclipped for likelihoods on the whole real line.
        low, high = self._support
        if math.isfinite(low):
            inputs = tf.maximum(inputs, low)
        if math.isfinite(high):
            inputs = tf.minimum(inputs, high)
        return self._posterior(inputs)

    def sample(self, num_samples, seed=None, temperature=1.0):
        # A pseudo-input k drawn uniformly, then z from q(z|u_k).
        k, eps = component_draws(num_samples, tf.zeros([self.num_components]),
                                  self.latent_dim, seed, temperature)
        return self._reparameterize(self._components(k), eps)

    def distribution(self):
        logits = tf.zeros([self.num_components])
        return tfd.MixtureSameFamily(tfd.Categorical(logits=logits), self._components())

    def log_prob(self, z):
        components, logits = self._components(), tf.zeros([self.num_components])
        base = getattr(components, "distribution", None)
        device = device_densities.active()  # in a LiteRT file: builtin ops only
        if isinstance(components, tfd.Independent) and isinstance(base, tfd.Normal):
            mixture = device_densities.diagonal_mixture if device else diagonal_mixture_log_prob
            return mixture(z, base.loc, base.scale, logits)
        if device and isinstance(components, tfd.MultivariateNormalTriL):
            return device_densities.full_covariance_mixture(
                z, components.loc, components.scale_tril, logits)
        return self.distribution().log_prob(z)  # e.g. full-covariance posteriors

    def get_config(self):
        return {**super().get_config(), "num_components": self.num_components}
