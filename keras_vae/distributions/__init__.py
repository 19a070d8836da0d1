"""Distributions of the model: priors p(z), posteriors q(z|x), likelihoods p(x|z)."""

from keras_vae.distributions import likelihoods, posteriors, priors, scale

__all__ = ["likelihoods", "posteriors", "priors", "scale"]
