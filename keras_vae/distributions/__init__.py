"""Distributions of the model: priors p(z), posteriors q(z|x), likelihoods p(x|z)."""

from keras_vae.distributions import flows, hierarchy, ladder, likelihoods, posteriors, priors, scale

# The flow posterior builds on posteriors.Posterior, so it joins the
# registry here, before any module can look a posterior up by name.
posteriors._REGISTRY["iaf"] = flows.InverseAutoregressiveFlow

__all__ = ["flows", "hierarchy", "ladder", "likelihoods", "posteriors", "priors", "scale"]
