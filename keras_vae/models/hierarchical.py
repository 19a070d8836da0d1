"""A VAE with several stochastic layers: z_L → … → z_1 → x."""

import keras

from keras_vae import compatibility, registry, validation
from keras_vae.distributions import hierarchy, ladder
from keras_vae.distributions import posteriors as posteriors_lib
from keras_vae.distributions import priors as priors_lib
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
        **kwargs: every other `VAE` argument. `prior` and `posterior` are
            the hierarchy's own (the names "standard_normal" and "diagonal"
            are accepted for them); free bits and `use_exact_kl=False` are
            refused, as `docs/compatibility.md` lists: the KL of the
            hierarchy is always a Monte-Carlo estimate.

    Example:

    ```python
    vae = keras_vae.HierarchicalVAE((28, 28, 1), latent_dims=(100, 50),
                                    hidden_units=(500, 500), objective="iwae",
                                    num_samples=5)
    ```
    """

    def __init__(self, input_shape, latent_dims=(100, 50), inference="bottom_up",
                 hierarchy_units=(100, 100), hierarchy_activation="tanh",
                 prior="standard_normal", posterior="diagonal", **kwargs):
        self.latent_dims = hierarchy.check_latent_dims(latent_dims)
        if inference not in INFERENCE:
            raise ValueError(f"Unknown inference: {inference!r}. Expected 'bottom_up' "
                             "(Burda et al.) or 'ladder' (Sønderby et al.).")
        self.inference = inference
        self.hierarchy_units = validation.positive_int_tuple("hierarchy_units",
                                                             hierarchy_units)
        self.hierarchy_activation = hierarchy_activation
        # The levels asked for (names, not the objects: Keras would track them).
        self._given_levels = {
            "prior": _level(prior, priors_lib._REGISTRY),
            "posterior": _level(posterior, posteriors_lib._REGISTRY)}
        if "latent_dim" in kwargs:
            raise ValueError(
                f"A HierarchicalVAE takes latent_dims (received {tuple(latent_dims)}); its "
                f"latent_dim is their sum. Remove latent_dim={kwargs['latent_dim']!r}.")
        links = {"latent_dims": self.latent_dims, "hidden_units": self.hierarchy_units,
                 "activation": hierarchy_activation}
        super().__init__(
            input_shape, latent_dim=sum(self.latent_dims),
            prior=_own(prior, "standard_normal", hierarchy.HierarchicalPrior, links),
            posterior=_own(posterior, "diagonal", INFERENCE[inference], links), **kwargs)

    def _option_levels(self, encoder, prior):
        levels = super()._option_levels(encoder, prior)
        levels.update(self._given_levels)  # refused pairs name what was asked for
        levels["hierarchy"] = self.inference
        compatibility.check(levels)  # a refused pair of named levels, first
        for role, instance, cls in (("prior", prior, hierarchy.HierarchicalPrior),
                                    ("posterior", self.posterior_family,
                                     INFERENCE[self.inference])):
            if not isinstance(instance, cls):
                raise ValueError(
                    f"A HierarchicalVAE's {role} is its own chain of Gaussian layers "
                    f"({cls.__name__} for inference={self.inference!r}); received the "
                    f"{role} {type(instance).__name__}. Leave {role}= at its default.")
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

    def layer_slices(self):
        """`[slice]` of each layer's dimensions in the code, z_1 first."""
        starts = [sum(self.latent_dims[:i]) for i in range(len(self.latent_dims) + 1)]
        return [slice(a, b) for a, b in zip(starts[:-1], starts[1:], strict=True)]

    def get_config(self):
        config = super().get_config()
        config.pop("latent_dim")  # the sum of latent_dims
        return {**config, "latent_dims": list(self.latent_dims), "inference": self.inference,
                "hierarchy_units": list(self.hierarchy_units),
                "hierarchy_activation": self.hierarchy_activation}


def _level(given, names):
    """The level of a prior or posterior asked for: its name, or None (an
    instance of a class of its own, or the hierarchy's saved one)."""
    return given if isinstance(given, str) else registry.name_of(given, names)


def _own(given, default, cls, links):
    """The hierarchy's prior or posterior for `given`: its own class (a saved
    one, or made from `links` for the `default` name); anything else is
    passed on for the compatibility rules to refuse."""
    if isinstance(given, cls) or (isinstance(given, dict)
                                  and given.get("class_name") == cls.__name__):
        return given
    if isinstance(given, str) and given == default:
        return cls(**links)
    return given

