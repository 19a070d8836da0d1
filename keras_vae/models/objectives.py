"""Training objectives: small functions over the per-example terms of a batch.

The model computes, for a batch, the per-example terms of `ElboTerms`
(reconstruction −(1/V) Σ_v log p(x|z_v), the KL, log p(x|z_v) and the samples
z_v); an objective turns them into the scalar loss that `call` adds with
`add_loss`. Evaluation uses the same functions (`log_importance_weights`,
`importance_weighted_bound`), so training and evaluation cannot drift apart.

Mathematical details:

    negative ELBO:  mean_x [ −(1/V) Σ_v log p(x|z_v) + λ · KL(q(z|x) ‖ p(z)) ]

    IWAE (Burda et al., 2015), k = V samples:
        log w_i = log p(x|z_i) + λ · (log p(z_i) − log q(z_i|x))
        bound(x) = log (1/k) Σ_i w_i = logsumexp_i(log w_i) − log k
        loss = −mean_x bound(x)

    free bits (Kingma et al., 2016), floor λ_fb nats per latent dimension j:
        KL term = Σ_j max(λ_fb, mean over the batch of KL_j)

With λ = 1 the IWAE bound with k = 1 is the ELBO estimated by Monte Carlo.
"""

import collections

import tensorflow as tf
from keras import ops

from keras_vae import registry


class ElboTerms(collections.namedtuple(
        "ElboTerms", "reconstruction kl log_px z posterior likelihood")):
    """Per-example parts of the ELBO for a batch.

    `reconstruction`: −(1/V) Σ_v log p(x|z_v), shape `(batch,)`; `kl`:
    KL(q(z|x) ‖ p(z)), `(batch,)`; `log_px`: log p(x|z_v), `(V, batch)`;
    `z`: the samples, `(V, batch, latent_dim)`; `posterior` and
    `likelihood`: the TFP distributions.
    """


# === The functions (tensors in, tensors out) ===
def negative_elbo(reconstruction, kl, kl_weight=1.0):
    """mean(reconstruction) + λ · mean(kl) over the batch, from per-example
    `(batch,)` terms."""
    return ops.mean(reconstruction) + kl_weight * ops.mean(kl)


def log_importance_weights(log_px, log_prior, log_posterior, kl_weight=1.0):
    """log w = log p(x|z) + λ (log p(z) − log q(z|x)), elementwise, `(k, batch)`."""
    return log_px + kl_weight * (log_prior - log_posterior)


def importance_weighted_bound(log_weights):
    """log (1/k) Σ_i w_i per example, from log w of shape `(k, batch)`."""
    k = ops.cast(ops.shape(log_weights)[0], log_weights.dtype)  # static or traced
    return tf.reduce_logsumexp(log_weights, axis=0) - ops.log(k)


def free_bits_kl(kl_share, kl_mean, free_bits):
    """Σ_j max(free_bits, mean KL_j): `kl_share` is what this replica adds
    for dimension j (its share of the batch mean, with the gradient) and
    `kl_mean` the global batch mean of KL_j that decides the floor."""
    return ops.sum(ops.where(kl_mean > free_bits, kl_share, free_bits))


# === The objectives the model calls ===
class Objective:
    """The loss of a batch from the model and the batch's `ElboTerms`.

    Subclasses implement `loss(vae, terms)` and may refuse combinations with
    the compatibility rules of `keras_vae.compatibility`.
    """

    name = None

    def loss(self, vae, terms):
        raise NotImplementedError(f"{type(self).__name__} must implement loss(vae, terms).")


class Elbo(Objective):
    """The negative ELBO, the KL weighted by `vae.kl_weight`, with free bits
    when `vae.free_bits` > 0."""

    name = "elbo"

    def loss(self, vae, terms):
        if vae.free_bits > 0:
            share, mean = vae.kl_share_and_mean(terms)
            kl = free_bits_kl(share, mean, vae.free_bits)
            return ops.mean(terms.reconstruction) + vae.kl_weight * kl
        return negative_elbo(terms.reconstruction, terms.kl, vae.kl_weight)


class Iwae(Objective):
    """The negative importance-weighted bound with k = `vae.num_samples`."""

    name = "iwae"

    def loss(self, vae, terms):
        log_weights = log_importance_weights(
            terms.log_px, vae.prior.log_prob(terms.z),
            terms.posterior.log_prob(terms.z), vae.kl_weight)
        return -ops.mean(importance_weighted_bound(log_weights))


_REGISTRY = {"elbo": Elbo, "iwae": Iwae}


def get(identifier):
    """An `Objective` from its name (`"elbo"`, `"iwae"`). Names only: the
    model saves its objective by name."""
    if not isinstance(identifier, str):
        raise ValueError(f"Expected an objective name, one of {sorted(_REGISTRY)}. "
                         f"Received: {identifier!r}")
    return registry.resolve(identifier, Objective, _REGISTRY, "objective")
