"""The bounds the objectives are made of: small functions over the
per-example terms of a batch.

The model computes, for a batch, the per-example terms of `ElboTerms`
(reconstruction −(1/V) Σ_v log p(x|z_v), the KL, log p(x|z_v) and the samples
z_v); an objective turns them into the scalar loss that `call` adds with
`add_loss`. Evaluation uses the same functions (`log_importance_weights`,
`importance_weighted_bound`), so training and evaluation cannot drift apart.

The objectives that use them are objects, `keras_vae.models.objectives`.

Mathematical details:

    negative ELBO:  mean_x [ −(1/V) Σ_v log p(x|z_v) + λ · KL(q(z|x) ‖ p(z)) ]

    IWAE (Burda et al., 2015), k = V samples:
        log w_i = log p(x|z_i) + λ · (log p(z_i) − log q(z_i|x))
        bound(x) = log (1/k) Σ_i w_i = logsumexp_i(log w_i) − log k
        loss = −mean_x bound(x)

    The tighter-bound family of Rainforth et al. (2018), from the same
    k = M·K log weights (M = `Miwae(groups=M)`, `Piwae(groups=M)`):
        MIWAE(M, K) = (1/M) Σ_m log (1/K) Σ_k w_mk           (M = 1: IWAE)
        CIWAE(β)    = β · (1/k) Σ_i log w_i + (1 − β) · IWAE_k  (β = 1: ELBO)
        PIWAE(M, K): the generative network climbs IWAE_{M·K}, the inference
            network MIWAE(M, K); one surrogate gives both gradients:
            IWAE(w̄) + MIWAE(w) − MIWAE(w̄), where w̄ are the weights with z
            and q(z|x) held constant (stop_gradient), so its value is
            IWAE_{M·K} and the MIWAE terms cancel in the generative gradient.

    free bits (Kingma et al., 2016), `Elbo(free_bits=λ_fb)`: a floor of λ_fb
    nats per latent dimension j:
        KL term = Σ_j max(λ_fb, mean over the batch of KL_j)

With λ = 1 the IWAE bound with k = 1 is the ELBO estimated by Monte Carlo.
"""

import collections

import tensorflow as tf
from keras import ops


class ElboTerms(collections.namedtuple(
        "ElboTerms", "reconstruction kl log_px z posterior likelihood inputs")):
    """Per-example parts of the ELBO for a batch.

    `reconstruction`: −(1/V) Σ_v log p(x|z_v), shape `(batch,)`; `kl`:
    KL(q(z|x) ‖ p(z)), `(batch,)`; `log_px`: log p(x|z_v), `(V, batch)`;
    `z`: the samples, `(V, batch, latent_dim)`; `posterior` and
    `likelihood`: the TFP distributions; `inputs`: the batch as the model
    was called with it.
    """


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


def multi_sample_bound(log_weights, groups):
    """MIWAE: the mean over `groups` = M groups of K = k/M samples of the
    K-sample bound, per example, from log w of shape `(k, batch)`."""
    grouped = tf.reshape(log_weights, [groups, -1, tf.shape(log_weights)[-1]])  # (M, K, batch)
    per_group = importance_weighted_bound(ops.transpose(grouped, (1, 0, 2)))  # (M, batch)
    return ops.mean(per_group, axis=0)


def combined_bound(log_weights, beta):
    """CIWAE: β · the Monte-Carlo ELBO + (1 − β) · the importance-weighted
    bound, from the same log w of shape `(k, batch)`."""
    return beta * ops.mean(log_weights, axis=0) + (1.0 - beta) * importance_weighted_bound(
        log_weights)


def partially_importance_weighted(log_weights, held_log_weights, groups):
    """PIWAE's surrogate per example: equal in value to IWAE_{M·K}; its
    gradient is IWAE's for what `held_log_weights` (w̄: z and q held
    constant) depend on, and MIWAE(M, K)'s for the rest (the inference
    network)."""
    return (importance_weighted_bound(held_log_weights)
            + multi_sample_bound(log_weights, groups)
            - multi_sample_bound(held_log_weights, groups))


def free_bits_kl(kl_share, kl_mean, free_bits):
    """Σ_j max(free_bits, mean KL_j): `kl_share` is what this replica adds
    for dimension j (its share of the batch mean, with the gradient) and
    `kl_mean` the global batch mean of KL_j that decides the floor."""
    return ops.sum(ops.where(kl_mean > free_bits, kl_share, free_bits))
