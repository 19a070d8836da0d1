"""The NumPy reference formulas the value tests check the package against,
written out independently of it, in float64."""

import math

import numpy as np


def softplus(x):
    return np.logaddexp(0.0, x)


def log_sigmoid(t):
    """log σ(t) = −log(1 + e^−t)."""
    return -np.logaddexp(0.0, -t)


def normal_logpdf(z, loc, scale):
    """log N(z; loc, scale²), elementwise."""
    return -0.5 * ((z - loc) / scale) ** 2 - np.log(scale) - 0.5 * math.log(2 * math.pi)


def log_normal(z, loc, scale):
    """log N(z; loc, diag scale²), summed over the last axis."""
    return normal_logpdf(z, loc, scale).sum(-1)


def logsumexp(a, axis):
    """log Σ exp(a) along `axis`, in float64, the stable NumPy way."""
    a = np.asarray(a, "float64")
    top = a.max(axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.exp(a - top).sum(axis=axis))


def numpy_scale(raw, floor=1e-4):
    """`keras_vae.distributions.scale.positive_scale`: floor + softplus(raw + softplus⁻¹(1))."""
    return floor + softplus(raw + math.log(math.e - 1.0))


def gaussian_kl_per_dimension(loc, scale):
    """KL(N(loc, scale²) ‖ N(0, 1)) = ½ (σ² + μ² − 1 − ln σ²), elementwise."""
    return 0.5 * (scale**2 + loc**2 - 1.0 - np.log(scale**2))


def gaussian_kl(loc, scale):
    """KL(N(loc, diag scale²) ‖ N(0, I)) = ½ Σ (σ² + μ² − 1 − ln σ²), per example."""
    return gaussian_kl_per_dimension(loc, scale).sum(-1)


def numpy_prior_log_prob(prior, z, vae=None):
    """log p(z) from a prior's weights, written out in NumPy (the VampPrior's
    components are `vae`'s posteriors at its pseudo-inputs)."""
    from keras_vae import priors

    def scale(raw):
        return numpy_scale(raw)

    if isinstance(prior, priors.StandardNormal):
        return log_normal(z, 0.0, 1.0)
    if isinstance(prior, priors.LearnableGaussian):
        return log_normal(z, prior.loc.numpy(), scale(prior.raw_scale.numpy()))
    if isinstance(prior, priors.MixtureOfGaussians):
        locs, scales = prior.locs.numpy(), scale(prior.raw_scales.numpy())
        logits = prior.logits.numpy()
        log_pi = logits - np.logaddexp.reduce(logits)
        parts = [log_pi[k] + log_normal(z, locs[k], scales[k]) for k in range(len(locs))]
        return np.logaddexp.reduce(np.stack(parts), axis=0)
    if isinstance(prior, priors.VampPrior):  # the posteriors at the pseudo-inputs
        pseudo = np.clip(prior.pseudo_inputs.numpy(), 0, 1)
        locs, scales = (np.asarray(t, "float64") for t in vae.encode(pseudo))
        parts = [log_normal(z, locs[k], scales[k]) for k in range(len(locs))]
        return np.logaddexp.reduce(np.stack(parts), axis=0) - np.log(len(locs))
    raise AssertionError(prior)
