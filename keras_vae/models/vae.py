"""The variational autoencoder: a subclassed Keras 3 model."""


import keras
import tensorflow_probability as tfp
from keras import ops

from keras_vae import compatibility, validation
from keras_vae.distributions import likelihoods as likelihoods_lib
from keras_vae.distributions import posteriors as posteriors_lib
from keras_vae.distributions import priors as priors_lib
from keras_vae.distributions import standardized
from keras_vae.models import metrics, networks
from keras_vae.models import objectives as objectives_lib
from keras_vae.models.detectors import Detection
from keras_vae.models.fitting import CheckedFitting
from keras_vae.models.generation import Generation
from keras_vae.models.inputs import UnconditionalInputs
from keras_vae.models.objectives import ElboTerms
from keras_vae.models.saving import Saving
from keras_vae.training import replicas as replicas_lib

tfd = tfp.distributions


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(UnconditionalInputs, Generation, Detection, Saving, CheckedFitting, keras.Model):
    """Variational autoencoder trained by maximising the ELBO.

    The encoder gives the posterior q(z|x) = N(μ(x), diag σ²(x)); z is drawn by
    the reparameterization trick z = μ + σ·ε, ε ~ N(0, I); the decoder gives
    the likelihood p(x|z). `call` adds the negative ELBO with `self.add_loss`,
    so `compile(optimizer=...)` and `fit(x)` need no `loss=`.

    Mathematical details:

    For each example, with V samples z_v ~ q(z|x),

        ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z))
                ≈ (1/V) Σ_v log p(x|z_v) − KL(q(z|x) ‖ p(z)).

    The model minimises `reconstruction_loss + kl_weight · kl_loss`, both
    averaged over the batch, in nats per example. With the standard normal
    prior the KL has the closed form ½ Σ_j (σ_j² + μ_j² − 1 − ln σ_j²);
    without one (or with `use_exact_kl=False`) it is estimated as
    (1/V) Σ_v [log q(z_v|x) − log p(z_v)].

    Args:
        input_shape: tuple of positive ints, the shape of one example, for
            example `(28, 28, 1)`.
        latent_dim: positive int, the size of z.
        encoder: `"mlp"`, `"conv"`, `"resnet"`, a `keras_vae.networks.Network`
            (e.g. `ResNet(blocks=3)`), or a Keras layer mapping a batch of
            examples to `posterior.params_size(latent_dim)` values each (for
            the diagonal posterior `2 * latent_dim`: loc, then pre-softplus
            scale).
        decoder: `"mlp"`, `"conv"`, `"resnet"`, a `Network`, or a Keras layer
            mapping z to `input_shape[:-1] + (likelihood.output_channels(c),)`
            values each, for c channels (c · `likelihood.params_size`).
        likelihood: `"bernoulli"`, `"gaussian"` (fixed scale),
            `"gaussian_learned_scale"`, or a `keras_vae.likelihoods` instance.
        prior: `"standard_normal"`, `"learnable_gaussian"`,
            `"mixture_of_gaussians"`, `"vamp"`, or a `keras_vae.priors.Prior`.
        posterior: `"diagonal"` (default), `"full_covariance"` (a
            lower-triangular scale), `"iaf"` (an inverse autoregressive flow,
            `keras_vae.distributions.flows`), or a
            `keras_vae.posteriors.Posterior`.
        kl_weight: non-negative float, the weight λ (β) on the KL term. Held
            in a variable: assign `vae.kl_weight = value` at any time, also
            from a callback during `fit`, without retracing.
        num_samples: positive int, V, the number of z samples per example.
        use_exact_kl: bool. If `True`, use the closed-form KL where TFP has
            one and a Monte-Carlo estimate otherwise; if `False`, always
            estimate it by Monte Carlo.
        objective: an objective of `keras_vae.objectives`, or its name for
            its defaults: `"elbo"` (`Elbo(free_bits=0.0)`), `"iwae"` for the
            importance-weighted bound of Burda et al. (2015) with
            `num_samples` = k samples, log (1/k) Σ_i p(x|z_i) p(z_i) /
            q(z_i|x), tighter than the ELBO (`kl_weight` then weighs
            log p(z) − log q(z|x) in each weight); `"miwae"`
            (`Miwae(groups=M)`), `"ciwae"` (`Ciwae(beta=β)`) and `"piwae"`
            (`Piwae(groups=M)`), the bounds of Rainforth et al. (2018) from
            the same k samples.
        free_bits, importance_groups, ciwae_beta: deprecated; the parameters
            of `Elbo(free_bits=...)`, `Miwae(groups=...)` / `Piwae(groups=...)`
            and `Ciwae(beta=...)`. Given with an objective's name, they are
            passed to it with a `DeprecationWarning`; they will be removed in
            the next release.
        hidden_units: Dense widths of the `"mlp"` encoder (the decoder uses
            them in reverse order).
        conv_filters: channels of the stride-2 convolutions of the `"conv"`
            encoder, and the widths of the `"resnet"` stages (the decoders use
            them in reverse order).
        activation: activation of the hidden layers of named networks.
        seed: int or None, seeds the ε draws and `sample()`.

    Example:

    ```python
    vae = keras_vae.VAE(input_shape=(28, 28, 1), latent_dim=16)
    vae.compile(optimizer="adam")
    vae.fit(x_train, epochs=10, batch_size=128)
    images = vae.sample(16)
    ```
    """

    #: The number of classes of a conditional model; None: unconditional.
    num_classes = None

    def __init__(
        self,
        input_shape,
        latent_dim=16,
        encoder="mlp",
        decoder="mlp",
        likelihood="bernoulli",
        prior="standard_normal",
        posterior="diagonal",
        kl_weight=1.0,
        num_samples=1,
        use_exact_kl=True,
        objective="elbo",
        free_bits=None,
        importance_groups=None,
        ciwae_beta=None,
        hidden_units=(512, 256),
        conv_filters=(32, 64),
        activation="relu",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.data_shape = validation.positive_int_tuple("input_shape", input_shape)
        self.latent_dim = validation.positive_int("latent_dim", latent_dim)
        self.num_samples = validation.positive_int("num_samples", num_samples)
        self.hidden_units = validation.positive_int_tuple("hidden_units", hidden_units)
        self.conv_filters = validation.positive_int_tuple("conv_filters", conv_filters)
        self.use_exact_kl = bool(use_exact_kl)
        self.objective = objectives_lib.from_model_keywords(
            objective, free_bits=free_bits, importance_groups=importance_groups,
            ciwae_beta=ciwae_beta)
        self.activation = activation
        self.seed = seed
        self.likelihood = likelihoods_lib.get(likelihood)
        self.posterior_family = posteriors_lib.get(posterior)
        prior = priors_lib.get(prior)
        compatibility.check(self._option_levels(encoder, prior))
        self.objective.check(self)
        self._build_networks(encoder, decoder)
        self.prior = prior  # tracked last: saved files order weights this way
        self._build_state(kl_weight, seed)
        self.build(self._model_input_shape())

    def _build_networks(self, encoder, decoder):
        # The decoder's outputs: the likelihood's parameters for every value.
        self.likelihood.check_data_shape(self.data_shape)
        self.params_shape = self.data_shape[:-1] + (
            self.likelihood.output_channels(self.data_shape[-1]),
        )
        self.encoder = networks.build_encoder(
            encoder, self._encoder_input_shape(),
            self.posterior_family.params_size(self.latent_dim),
            self.hidden_units, self.conv_filters, self.activation,
        )
        self.decoder = networks.build_decoder(
            decoder, self._decoder_input_size(), self.params_shape,
            self.hidden_units, self.conv_filters, self.activation,
        )
        # Named networks are rebuilt from the widths on loading; others saved.
        self._network_names = {
            "encoder": networks.serialized(encoder),
            "decoder": networks.serialized(decoder),
        }

    def _build_state(self, kl_weight, seed):
        self._kl_weight = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(
                validation.non_negative("kl_weight", kl_weight)
            ),
            trainable=False,
            name="kl_weight",
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.reconstruction_tracker = metrics.Float32Mean(name="reconstruction_loss")
        self.kl_tracker = metrics.Float32Mean(name="kl_loss")

    def _option_levels(self, encoder, prior):
        """This model's level of each option of `keras_vae.compatibility`."""
        return {
            "likelihood": likelihoods_lib.REGISTRY.name_of(standardized.inner(self.likelihood)),
            "input": "table" if standardized.inner(self.likelihood) is not self.likelihood
            else "image",
            "prior": priors_lib.REGISTRY.name_of(prior),
            "posterior": posteriors_lib.REGISTRY.name_of(self.posterior_family),
            "objective": self.objective.level,
            "network": networks.level_of(encoder),
            "conditional": "yes" if self.num_classes else "no",
            "num_samples": "> 1" if self.num_samples > 1 else "1",
            "use_exact_kl": str(self.use_exact_kl),
            "hierarchy": "none",  # HierarchicalVAE: its inference
        }

    def build(self, input_shape):
        for layer, shape in (
            (self.encoder, (None,) + self._encoder_input_shape()),
            (self.decoder, (None, self._decoder_input_size())),
        ):
            if not layer.built:
                layer.build(shape)
        family = self.posterior_family  # a flow posterior has weights of its own
        if isinstance(family, keras.layers.Layer) and not family.built:
            family.build(self.latent_dim)
        if not self.prior.built:
            self.prior.attach(self)
            self.prior.build(self.latent_dim)

    # === The code z ===
    @property
    def latent_dims(self):
        """The sizes of the model's stochastic layers, bottom first: one
        layer, `(latent_dim,)`, here; several in a `HierarchicalVAE`."""
        return (self.latent_dim,)

    def layer_slices(self):
        """`[slice]` of each stochastic layer's dimensions in the code z,
        bottom first."""
        starts = [sum(self.latent_dims[:i]) for i in range(len(self.latent_dims) + 1)]
        return [slice(a, b) for a, b in zip(starts[:-1], starts[1:], strict=True)]

    # === KL weight ===
    @property
    def kl_weight(self):
        """The weight λ (β) on the KL term, a non-trainable variable."""
        return self._kl_weight

    @kl_weight.setter
    def kl_weight(self, value):
        self._kl_weight.assign(validation.non_negative("kl_weight", value))

    # === Forward pass ===
    def call(self, x, training=False):
        terms = self.elbo_terms(x)
        self.add_loss(self.objective.loss(self, terms))
        self.reconstruction_tracker.update_state(terms.reconstruction)
        self.kl_tracker.update_state(terms.kl)
        return ops.mean(self.likelihood.distribution_mean(terms.likelihood), axis=0)

    def elbo_terms(self, inputs):
        """The ELBO's parts for a batch, per example (see `ElboTerms`)."""
        x, labels = self.split_inputs(inputs)
        posterior = self.posterior(x, labels)
        eps = replicas_lib.noise(self, ops.shape(x)[0])
        z = self.posterior_family.reparameterize(posterior, eps)
        likelihood = self.likelihood_distribution(z, labels)
        log_px = self.likelihood.log_prob(likelihood, x)  # (num_samples, batch)
        return ElboTerms(
            reconstruction=-ops.mean(log_px, axis=0),
            kl=self._kl_divergence(posterior, z),
            log_px=log_px, z=z, posterior=posterior, likelihood=likelihood, inputs=inputs,
        )

    def kl_share_and_mean(self, terms):
        """The KL per latent dimension for free bits: `(share, mean)` of
        `keras_vae.training.replicas.kl_share_and_mean`."""
        return replicas_lib.kl_share_and_mean(self, self._kl_per_dimension_of(terms.posterior))

    def kl_per_dimension(self, x, labels=None):
        """KL(q(z_j|x) ‖ p(z_j)) per example and latent dimension, `(batch,
        latent_dim)`, for a factorised posterior and prior."""
        return self._kl_per_dimension_of(self.posterior(x, labels))

    def _kl_per_dimension_of(self, posterior):
        prior = self.prior.distribution()
        if isinstance(posterior, tfd.Independent) and isinstance(prior, tfd.Independent):
            try:  # factorised over dimensions: TFP's closed form per dimension
                return tfd.kl_divergence(posterior.distribution, prior.distribution)
            except NotImplementedError:
                pass
        raise ValueError(
            f"The KL per latent dimension (free_bits, kl_per_dimension) needs a "
            f"closed form; the prior {type(self.prior).__name__} with the "
            f"{type(self.posterior_family).__name__} posterior has none. Use the "
            "'standard_normal' or 'learnable_gaussian' prior with the 'diagonal' "
            "posterior, or free_bits=0."
        )

    def _kl_divergence(self, posterior, z):
        if self.use_exact_kl:
            try:
                return self.posterior_family.kl_divergence(posterior,
                                                           self.prior.distribution())
            except NotImplementedError:
                pass  # No closed form for this pair: estimate it below.
        return ops.mean(posterior.log_prob(z) - self.prior.log_prob(z), axis=0)
