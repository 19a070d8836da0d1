"""Distributions of the model: priors p(z), posteriors q(z|x), likelihoods p(x|z)."""

# Importing flows registers the "iaf" posterior (it builds on
# posteriors.Posterior), before any module can look a posterior up by name.
from keras_vae.distributions import flows, hierarchy, ladder, likelihoods, posteriors, priors, scale

__all__ = ["flows", "hierarchy", "ladder", "likelihoods", "posteriors", "priors", "scale"]
