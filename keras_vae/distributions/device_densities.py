"""The mixture priors' log densities in a form that LiteRT files run.

Training and the SavedModel compute a diagonal mixture's log density by
two matrix products in float64 (`priors.diagonal_mixture_log_prob`: no
`(..., K, latent_dim)` tensor, and no cancellation), and a VampPrior over
full-covariance posteriors through TFP's triangular solve. LiteRT has no
float64 kernels and no triangular solve, so the files' `score_<B>`
signatures are traced inside `device_graph()`, where the priors use the
direct forms below: float32 throughout (the direct form has no
cancellation), and forward substitution unrolled over the latent
dimensions (builtin ops only).

Mathematical details, for z and components k with means μ_k:

    diagonal:        log Σ_k π_k N(z; μ_k, diag σ_k²),
                     N = exp(−½ Σ_d ((z_d − μ_kd)/σ_kd)²) / ((2π)^{D/2} Π_d σ_kd)
    full covariance: y = L_k⁻¹ (z − μ_k) by forward substitution,
                     y_i = (r_i − Σ_{j<i} L_ij y_j) / L_ii,
                     log N = −½ |y|² − Σ_i log L_ii − (D/2) log 2π
"""

import math

import tensorflow as tf

from keras_vae.distributions import thread_flag

_DEVICE_GRAPH = thread_flag.ThreadFlag()


def device_graph():
    """Within the block, the mixture priors trace their log densities in the
    direct float32 forms of this module (for a LiteRT file)."""
    return _DEVICE_GRAPH.on()


def active():
    """Whether a `device_graph()` block is open in this thread."""
    return _DEVICE_GRAPH.active()


def diagonal_mixture(z, locs, scales, logits):
    """log Σ_k softmax(logits)_k N(z; μ_k, diag σ_k²), `z.shape[:-1]`."""
    standardized = (z[..., None, :] - locs) / scales  # (..., K, D)
    dims = tf.cast(tf.shape(locs)[-1], z.dtype)
    log_components = (-0.5 * tf.reduce_sum(tf.square(standardized), axis=-1)
                      - tf.reduce_sum(tf.math.log(scales), axis=-1)
                      - 0.5 * dims * math.log(2.0 * math.pi) + tf.nn.log_softmax(logits))
    return tf.reduce_logsumexp(log_components, axis=-1)


def full_covariance_mixture(z, locs, scale_trils, logits):
    """log Σ_k softmax(logits)_k N(z; μ_k, L_k L_kᵀ), `z.shape[:-1]`, with
    lower-triangular `scale_trils` `(K, D, D)` and a static D."""
    dims = locs.shape[-1]
    residual = z[..., None, :] - locs  # (..., K, D)
    solved, log_diagonal = [], 0.0
    for i in range(dims):
        value = residual[..., i]
        if i:
            value -= tf.reduce_sum(scale_trils[:, i, :i] * tf.stack(solved, axis=-1), axis=-1)
        solved.append(value / scale_trils[:, i, i])
        log_diagonal += tf.math.log(scale_trils[:, i, i])
    y = tf.stack(solved, axis=-1)
    log_components = (-0.5 * tf.reduce_sum(tf.square(y), axis=-1) - log_diagonal
                      - 0.5 * dims * math.log(2.0 * math.pi) + tf.nn.log_softmax(logits))
    return tf.reduce_logsumexp(log_components, axis=-1)
