"""Distributions of the model: priors p(z), posteriors q(z|x), likelihoods p(x|z)."""

# Importing flows registers the "iaf" posterior (it builds on
# posteriors.Posterior), before any module can look a posterior up by name;
# importing logistic_mixture registers "discretized_logistic_mixture", and
# neighbour_mixture "autoregressive_logistic_mixture".
from keras_vae.distributions import (
                                     flows,
                                     hierarchy,
                                     ladder,
                                     likelihoods,
                                     logistic_mixture,
                                     neighbour_mixture,
                                     posteriors,
                                     priors,
                                     scale,
)

__all__ = ["flows", "hierarchy", "ladder", "likelihoods", "logistic_mixture",
           "neighbour_mixture", "posteriors", "priors", "scale"]
