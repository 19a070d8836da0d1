"""Posterior families q(z|x): from the encoder's outputs to a distribution.

A family says how many encoder outputs it needs (`params_size`), builds the
TFP distribution, and draws z = μ + L·ε by the reparameterization trick so
that gradients reach the encoder.

- `DiagonalGaussian` (default): q = N(μ, diag σ²), 2·d outputs; the KL to a
  Gaussian prior has a closed form.
- `FullCovarianceGaussian`: q = N(μ, L Lᵀ) with L lower-triangular (its
  diagonal through softplus with a floor), d + d(d+1)/2 outputs; it can
  express correlated latent dimensions. The KL to a Gaussian prior has the
  closed form ½ [tr(Σ_p⁻¹ Σ_q) + (μ_p − μ_q)ᵀ Σ_p⁻¹ (μ_p − μ_q) − d
  + ln det Σ_p − ln det Σ_q]; to a mixture it is estimated by Monte Carlo.
"""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae import registry
from keras_vae.distributions.scale import positive_scale

tfd = tfp.distributions


class Posterior:
    """Base class of posterior families.

    Subclasses define `params_size(latent_dim)`, `distribution(params)`,
    `reparameterize(distribution, eps)` and `loc_and_scale(distribution)`.
    `loc_is_mean` says whether that loc is the mean E_q[z|x]; where it is
    not (flows, hierarchies), `evaluation.active_units` estimates the mean.
    """

    loc_is_mean = True

    def kl_divergence(self, distribution, prior):
        """The closed-form KL(q ‖ p) per example; raises NotImplementedError
        where TFP has none (the model then estimates it by Monte Carlo)."""
        return tfd.kl_divergence(distribution, prior)

    def log_prob_of_draw(self, distribution, z, eps):
        """log q(z|x) of z = reparameterize(distribution, eps): the
        distribution's own log_prob, unless a family knows it from ε."""
        return distribution.log_prob(z)

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


#: The named posteriors: `names()`, `register(name)` (a class decorator) and `get`.
REGISTRY = registry.Registry("posterior", Posterior)
register = REGISTRY.register
names = REGISTRY.names


def get(identifier):
    """Resolve a posterior from a name, a config dict or an instance."""
    return REGISTRY.get(identifier)


@keras.saving.register_keras_serializable(package="keras_vae")
@register("diagonal")
class DiagonalGaussian(Posterior):
    """q(z|x) = N(μ, diag σ²); the encoder outputs μ, then σ before softplus."""

    def params_size(self, latent_dim):
        return 2 * latent_dim

    def distribution(self, params):
        loc, raw_scale = tf.split(params, 2, axis=-1)
        return tfd.Independent(tfd.Normal(loc, positive_scale(raw_scale)),
                               reinterpreted_batch_ndims=1)

    def reparameterize(self, distribution, eps):
        return distribution.distribution.loc + distribution.distribution.scale * eps

    def loc_and_scale(self, distribution):
        return distribution.distribution.loc, distribution.distribution.scale


@keras.saving.register_keras_serializable(package="keras_vae")
@register("full_covariance")
class FullCovarianceGaussian(Posterior):
    """q(z|x) = N(μ, L Lᵀ); the encoder outputs μ, then the entries of L."""

    def params_size(self, latent_dim):
        return latent_dim + latent_dim * (latent_dim + 1) // 2

    def distribution(self, params):
        latent_dim = _latent_dim(params.shape[-1])
        loc, raw = params[..., :latent_dim], params[..., latent_dim:]
        tril = tfp.math.fill_triangular(raw)
        # The diagonal through a mask, not diag_part/set_diag: LiteRT has no
        # builtin kernel for those, and the VampPrior samples through here.
        eye = tf.eye(latent_dim, dtype=tril.dtype)
        diagonal = positive_scale(tf.reduce_sum(tril * eye, axis=-1))
        scale_tril = tril * (1.0 - eye) + eye * diagonal[..., None]
        return tfd.MultivariateNormalTriL(loc, scale_tril)

    def reparameterize(self, distribution, eps):
        return distribution.loc + tf.linalg.matvec(distribution.scale_tril, eps)

    def log_prob_of_draw(self, distribution, z, eps):
        """log N(ε; 0, I) − Σ_j log L_jj: the change of variables z = μ + Lε,
        with no triangular solve (LiteRT has no builtin kernel for one)."""
        eye = tf.eye(tf.shape(eps)[-1], dtype=eps.dtype)
        diagonal = tf.reduce_sum(distribution.scale_tril * eye, axis=-1)
        d = tf.cast(tf.shape(eps)[-1], eps.dtype)
        return (-0.5 * tf.reduce_sum(tf.square(eps), axis=-1) - 0.5 * d * math.log(2 * math.pi)
                - tf.reduce_sum(tf.math.log(diagonal), axis=-1))

    def kl_divergence(self, distribution, prior):
        # TFP has KL(MVN ‖ MVN) but not KL(MVN ‖ Independent(Normal)): a
        # factorised Gaussian prior is the MVN with a diagonal scale.
        base = getattr(prior, "distribution", None)
        if isinstance(prior, tfd.Independent) and isinstance(base, tfd.Normal):
            loc, scale = base.loc, base.scale
            scale = tf.broadcast_to(scale, tf.broadcast_dynamic_shape(
                tf.shape(loc), tf.shape(scale)))
            prior = tfd.MultivariateNormalDiag(loc, scale)
        return tfd.kl_divergence(distribution, prior)

    def loc_and_scale(self, distribution):
        return distribution.loc, distribution.stddev()


def _latent_dim(params_size):
    # params_size = d + d(d+1)/2  →  d² + 3d − 2·params_size = 0.
    return int(round((-3 + math.sqrt(9 + 8 * params_size)) / 2))
