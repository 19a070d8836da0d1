"""A VAE with several stochastic layers: z_L → … → z_1 → x."""

import keras

from keras_vae import validation
from keras_vae.distributions import hierarchy, ladder
from keras_vae.models.vae import VAE

#: inference= names and their posterior classes.
INFERENCE = {"bottom_up": hierarchy.BottomUpInference, "ladder": ladder.LadderInference}


@keras.saving.register_keras_serializable(package="keras_vae")
class HierarchicalVAE(VAE):
    """A VAE with L ≥ 2 layers of latent variables (Burda et al., 2015;
    Sønderby et al., 2016).

    The generative path is p(z_L) p(z_{L−1}|z_L) … p(z_1|z_2) p(x|z_1), with
    p(z_L) = N(0, I) and each p(z_i|z_{i+1}) a diagonal Gaussian from an MLP
    of `hierarchy_units`. The code z of every method (`encode`, `decode`,
    `sample`, the samplers, exports) is the concatenation [z_1, …, z_L] of
    size `latent_dim = sum(latent_dims)`; the decoder reads z_1, so `decode`
    takes the whole code and uses its first `latent_dims[0]` values.

    Args:
        input_shape: as for `VAE`.
        latent_dims: sizes of the stochastic layers, bottom first, for
            example `(100, 50)` (Burda et al.'s two-layer model).
        inference: `"bottom_up"`: q(z_1|x) q(z_2|z_1) …, the encoder giving
            z_1 and an MLP each next layer; `"ladder"`: a deterministic
            bottom-up pass, then top-down posteriors that merge it with the
            prior's links by precision weighting (`keras_vae.distributions.ladder`).
        hierarchy_units: Dense widths of every link between two layers.
        hierarchy_activation: their activation (tanh, as in Burda et al.).
        **kwargs: every other `VAE` argument but `prior` and `posterior`:
            the hierarchy's prior and posterior are its own chains of Gaussian
            layers, built from the arguments above. Free bits are refused, as
            `docs/compatibility.md` lists; the KL of the hierarchy is always
            a Monte-Carlo estimate.

    Example:

    ```python
    vae = keras_vae.HierarchicalVAE((28, 28, 1), latent_dims=(100, 50),
                                    hidden_units=(500, 500), objective="iwae",
                                    num_samples=5)
    ```
    """

    def __init__(self, input_shape, latent_dims=(100, 50), inference="bottom_up",
                 hierarchy_units=(100, 100), hierarchy_activation="tanh", **kwargs):
        self._layer_sizes = hierarchy.check_latent_dims(latent_dims)
        if inference not in INFERENCE:
            raise ValueError(f"Unknown inference: {inference!r}. Expected 'bottom_up' "
                             "(Burda et al.) or 'ladder' (Sønderby et al.).")
        self.inference = inference
        self.hierarchy_units = validation.positive_int_tuple("hierarchy_units",
                                                             hierarchy_units)
        self.hierarchy_activation = hierarchy_activation
        for role in ("prior", "posterior"):
            if role in kwargs:
                raise TypeError(
                    f"A HierarchicalVAE takes no {role}=: its {role} is its own chain of "
                    f"Gaussian layers, built from latent_dims, inference and "
                    f"hierarchy_units. Received {role}={kwargs[role]!r}; remove it, or use "
                    f"a one-layer VAE for this {role}.")
        if "latent_dim" in kwargs:
            raise ValueError(
                f"A HierarchicalVAE takes latent_dims (received {tuple(latent_dims)}); its "
                f"latent_dim is their sum. Remove latent_dim={kwargs['latent_dim']!r}.")
        links = {"latent_dims": self.latent_dims, "hidden_units": self.hierarchy_units,
                 "activation": hierarchy_activation}
        super().__init__(input_shape, latent_dim=sum(self.latent_dims),
                         prior=hierarchy.HierarchicalPrior(**links),
                         posterior=INFERENCE[inference](**links), **kwargs)

    def _option_levels(self, encoder, prior):
        # The prior and posterior are the hierarchy's own: not options here.
        levels = super()._option_levels(encoder, prior)
        levels.update(prior=None, posterior=None, hierarchy=self.inference)
        return levels

    def build(self, input_shape):
        super().build(input_shape)
        if isinstance(self.posterior_family, ladder.LadderInference):
            self.posterior_family.share_prior(self.prior)

    # The decoder reads z_1, the first block of the code.
    def _decoder_input_size(self):
        return self.latent_dims[0]

    def _decoder_inputs(self, z, labels):
        return z[..., : self.latent_dims[0]]

    @property
    def latent_dims(self):
        """The sizes of the stochastic layers, z_1 first."""
        return self._layer_sizes

    def get_config(self):
        config = super().get_config()
        for key in ("latent_dim", "prior", "posterior"):  # built from the arguments below
            config.pop(key)
        return {**config, "latent_dims": list(self.latent_dims), "inference": self.inference,
                "hierarchy_units": list(self.hierarchy_units),
                "hierarchy_activation": self.hierarchy_activation}

    @classmethod
    def from_config(cls, config):
        # Files saved before issue 35 held the hierarchy's prior and posterior.
        config = {k: v for k, v in config.items() if k not in ("prior", "posterior")}
        return super().from_config(config)
