"""Ladder inference (Sønderby et al., 2016) for a hierarchy of latent layers.

A deterministic bottom-up pass gives a Gaussian N(μ̂_i, σ̂_i²) for every
layer: the encoder's outputs h_1 = [μ̂_1, σ̂_1 before softplus], then
h_{i+1} = MLP_i(h_i). The posterior is then drawn top-down, sharing the
generative model's links: z_L ~ N(μ̂_L, σ̂_L²), and for i < L the prior's
p(z_i | z_{i+1}) = N(μ_p, σ_p²) is merged with the bottom-up Gaussian by
precision weighting,

    σ_q⁻² = σ̂_i⁻² + σ_p⁻²,      μ_q = σ_q² (μ̂_i σ̂_i⁻² + μ_p σ_p⁻²),

q(z_i | z_{i+1}, x) = N(μ_q, σ_q²). The whole q(z|x) is one `MarkovChain`
over the code (`keras_vae.distributions.hierarchy`), so its density and
samples come from the same bijector as the bottom-up inference.
"""

import keras
import tensorflow as tf

from keras_vae.distributions.hierarchy import BottomUpInference, MarkovChain, chain_distribution


def precision_weighted(loc_a, scale_a, loc_b, scale_b):
    """`(loc, scale)` of the normalised product N(loc_a, scale_a²) · N(loc_b, scale_b²)."""
    precision_a, precision_b = scale_a ** -2, scale_b ** -2
    variance = 1.0 / (precision_a + precision_b)
    return variance * (loc_a * precision_a + loc_b * precision_b), tf.sqrt(variance)


@keras.saving.register_keras_serializable(package="keras_vae")
class LadderInference(BottomUpInference):
    """q(z|x) by ladder inference (module docstring). Its links are the
    bottom-up MLPs h_i → h_{i+1}; the top-down ones are the prior's, which
    the model hands over with `share_prior` before use."""

    def build(self, latent_dim):
        self._check_size(latent_dim)
        dims = self.latent_dims
        self._make_links([(2 * dims[i], dims[i + 1]) for i in range(len(dims) - 1)])

    def share_prior(self, prior):
        """Use `prior.link(i, z_next)` for p(z_i | z_{i+1}); a bound method,
        so the prior's weights stay the prior's (saved once)."""
        self._prior_link = prior.link

    def bottom_up(self, params):
        """The bottom-up Gaussians `[(μ̂_i, σ̂_i)]`, z_1's first."""
        gaussians, h = [self.first_block(params)], params
        for link in self.links:
            h = link.raw(h)
            gaussians.append(link.split(h))
        return gaussians

    def distribution(self, params):
        if not hasattr(self, "_prior_link"):
            raise ValueError("LadderInference shares the HierarchicalPrior's links: build "
                             "it through keras_vae.HierarchicalVAE(inference='ladder').")
        gaussians = self.bottom_up(params)

        def merged(i):
            def link(z_next):
                return precision_weighted(*gaussians[i], *self._prior_link(i, z_next))
            return link

        links = [merged(i) for i in reversed(range(len(gaussians) - 1))]
        chain = MarkovChain(self.latent_dims, gaussians[-1], links, top_down=True)
        return chain_distribution(chain, tf.shape(params)[:-1])
