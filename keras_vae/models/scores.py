"""Anomaly scores: how unlike the training data an example is (higher: less).

Every score is deterministic: the noise of its k samples is fixed by its
seed, the same ε_1..ε_k for every example, so an example's score depends on
the example alone, whatever batch it comes in, in Keras, in the SavedModel
and in a LiteRT file (which has no random op to run). Scores are small
objects that share one interface, `score(vae, inputs, eps)`; `Detector`
(`keras_vae.models.detectors`) keeps one with its threshold.

Mathematical details, with z_i = reparameterize(q(z|x), ε_i), i = 1..k, and
z_0 the code at ε = 0 (the posterior mean for Gaussian posteriors):

    elbo:            −(1/k) Σ_i [log p(x|z_i) + log p(z_i) − log q(z_i|x)]
                     (the negative ELBO, its KL estimated with the same z_i)
    log_likelihood:  −[logsumexp_i (log p(x|z_i) + log p(z_i) − log q(z_i|x)) − log k]
                     (the negative importance-sampled log-likelihood; k = 1: elbo)
    reconstruction:  −log p(x|z_0)
    latent:          −log p(z_0), under the prior or a fitted sampler (`sampler=`)

Units: nats per example. For data in [0, 1] the likelihood's densities are
the model's own (a table's standardised columns: see `keras_vae.data.tables`).
"""

import abc

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_vae import registry


class Score(registry.Configurable, abc.ABC):
    """Base class: `score(vae, inputs, eps)` → `(batch,)` scores in nats.

    `eps`: `(k, 1, latent_dim)` fixed noise (`noise`), broadcast over the
    batch. `samples`: the k a score uses (1 for those at ε = 0).
    """

    samples_used = True

    @abc.abstractmethod
    def score(self, vae, inputs, eps):
        """Per-example scores, a `(batch,)` float32 tensor."""


#: The named scores: `names()`, `register(name)` and `get`.
REGISTRY = registry.Registry("score", Score)
register = REGISTRY.register
names = REGISTRY.names
get = REGISTRY.get


def noise(latent_dim, samples, seed):
    """The fixed ε of a detector: `(samples, 1, latent_dim)` standard normal
    draws of NumPy's PCG64 generator from `seed` (float32)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    return rng.standard_normal((samples, 1, latent_dim)).astype("float32")


def _log_weights(vae, inputs, eps):
    """log p(x|z_i) + log p(z_i) − log q(z_i|x), `(k, batch)`.

    The k samples of the batch are one flat batch of k · batch examples (x
    repeated): every tensor keeps the rank it has in training with one
    sample, which LiteRT's builtin kernels take."""
    x, labels = vae.split_inputs(inputs)
    k, batch = ops.shape(eps)[0], ops.shape(x)[0]
    repeated = tf.tile(x, [k] + [1] * (len(x.shape) - 1))
    labels = None if labels is None else tf.tile(labels, [k] + [1] * (len(labels.shape) - 1))
    flat_eps = tf.reshape(tf.broadcast_to(eps, [k, batch, vae.latent_dim]),
                          [1, k * batch, vae.latent_dim])
    posterior = vae.posterior(repeated, labels)
    z = vae.posterior_family.reparameterize(posterior, flat_eps)
    log_px = vae.likelihood.log_prob(vae.likelihood_distribution(z, labels), repeated)
    log_weights = (log_px + vae.prior.log_prob(z)
                   - vae.posterior_family.log_prob_of_draw(posterior, z, flat_eps))
    return tf.reshape(log_weights, [k, batch])


def _centre(vae, inputs):
    """(x, labels, z_0): the code at ε = 0, `(1, batch, latent_dim)`."""
    x, labels = vae.split_inputs(inputs)
    posterior = vae.posterior(x, labels)
    zeros = tf.zeros([1, ops.shape(x)[0], vae.latent_dim])
    return x, labels, vae.posterior_family.reparameterize(posterior, zeros)


@keras.saving.register_keras_serializable(package="keras_vae")
@register("elbo")
class NegativeElbo(Score):
    def score(self, vae, inputs, eps):
        return -ops.mean(_log_weights(vae, inputs, eps), axis=0)


@keras.saving.register_keras_serializable(package="keras_vae")
@register("log_likelihood")
class NegativeLogLikelihood(Score):
    def score(self, vae, inputs, eps):
        log_weights = _log_weights(vae, inputs, eps)
        k = ops.cast(ops.shape(log_weights)[0], "float32")
        return -(tf.reduce_logsumexp(log_weights, axis=0) - ops.log(k))


@keras.saving.register_keras_serializable(package="keras_vae")
@register("reconstruction")
class Reconstruction(Score):
    samples_used = False

    def score(self, vae, inputs, eps):
        x, labels, z = _centre(vae, inputs)
        return -vae.likelihood.log_prob(vae.likelihood_distribution(z, labels), x)[0]


@keras.saving.register_keras_serializable(package="keras_vae")
@register("latent")
class LatentDensity(Score):
    """−log p(z_0) under the prior, or under the fitted sampler `sampler`
    (one with a `log_prob`, such as the Gaussian mixture of fit-sampler)."""

    samples_used = False

    def __init__(self, sampler=None):
        self.sampler = sampler

    def score(self, vae, inputs, eps):
        _, _, z = _centre(vae, inputs)
        density = vae.sampler(self.sampler)
        if not hasattr(density, "log_prob"):
            raise ValueError(
                f"The latent score needs the density of the sampler {self.sampler!r}, "
                f"and {type(density).__name__} has no log_prob. Use the prior "
                "(sampler=None) or a Gaussian mixture from keras-vae fit-sampler.")
        return -ops.reshape(density.log_prob(z[0]), [-1])

    def get_config(self):
        return {"sampler": self.sampler}
