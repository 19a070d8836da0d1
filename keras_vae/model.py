"""The variational autoencoder: a subclassed Keras 3 model."""

import collections
import math

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

from keras_vae import callbacks as callbacks_lib
from keras_vae import compatibility, distribute, registry
from keras_vae import likelihoods as likelihoods_lib
from keras_vae import networks
from keras_vae import posteriors as posteriors_lib
from keras_vae import priors as priors_lib
from keras_vae import replicas as replicas_lib
from keras_vae import validation

tfd = tfp.distributions

_OBJECTIVES = ("elbo", "iwae")


class ElboTerms(collections.namedtuple(
        "ElboTerms", "reconstruction kl log_px z posterior likelihood")):
    """Per-example parts of the ELBO for a batch.

    `reconstruction`: −(1/V) Σ_v log p(x|z_v), shape `(batch,)`; `kl`:
    KL(q(z|x) ‖ p(z)), `(batch,)`; `log_px`: log p(x|z_v), `(V, batch)`;
    `z`: the samples, `(V, batch, latent_dim)`; `posterior` and
    `likelihood`: the TFP distributions.
    """


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(keras.Model):
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
        encoder: `"mlp"`, `"conv"`, or a Keras layer mapping a batch of
            examples to `posterior.params_size(latent_dim)` values each (for
            the diagonal posterior `2 * latent_dim`: loc, then pre-softplus
            scale).
        decoder: `"mlp"`, `"conv"`, or a Keras layer mapping z to
            `prod(input_shape) * likelihood.params_size` values each.
        likelihood: `"bernoulli"`, `"gaussian"` (fixed scale),
            `"gaussian_learned_scale"`, or a `keras_vae.likelihoods` instance.
        prior: `"standard_normal"`, `"learnable_gaussian"`,
            `"mixture_of_gaussians"`, `"vamp"`, or a `keras_vae.priors.Prior`.
        posterior: `"diagonal"` (default) or `"full_covariance"` (a
            lower-triangular scale), or a `keras_vae.posteriors.Posterior`.
        kl_weight: non-negative float, the weight λ (β) on the KL term. Held
            in a variable: assign `vae.kl_weight = value` at any time, also
            from a callback during `fit`, without retracing.
        num_samples: positive int, V, the number of z samples per example.
        use_exact_kl: bool. If `True`, use the closed-form KL where TFP has
            one and a Monte-Carlo estimate otherwise; if `False`, always
            estimate it by Monte Carlo.
        objective: `"elbo"`, or `"iwae"` for the importance-weighted bound of
            Burda et al. (2015) with `num_samples` = k samples:
            log (1/k) Σ_i p(x|z_i) p(z_i) / q(z_i|x), tighter than the ELBO.
            (`kl_weight` then weighs log p(z) − log q(z|x) in each weight.)
        free_bits: float ≥ 0, nats per latent dimension below which the KL of
            that dimension (averaged over the batch) is not penalised
            (Kingma et al., 2016); needs a closed-form per-dimension KL.
        hidden_units: Dense widths of the `"mlp"` encoder (the decoder uses
            them in reverse order).
        conv_filters: channels of the stride-2 convolutions of the `"conv"`
            encoder (the decoder uses them in reverse order).
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
        free_bits=0.0,
        hidden_units=(512, 256),
        conv_filters=(32, 64),
        activation="relu",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # === Config ===
        self.data_shape = validation.positive_int_tuple("input_shape", input_shape)
        self.latent_dim = validation.positive_int("latent_dim", latent_dim)
        self.num_samples = validation.positive_int("num_samples", num_samples)
        self.hidden_units = validation.positive_int_tuple("hidden_units", hidden_units)
        self.conv_filters = validation.positive_int_tuple("conv_filters", conv_filters)
        self.use_exact_kl = bool(use_exact_kl)
        if objective not in _OBJECTIVES:
            raise ValueError(
                f"Unknown objective: {objective!r}. Expected one of {list(_OBJECTIVES)}."
            )
        self.objective = objective
        self.free_bits = validation.non_negative("free_bits", free_bits)
        self.activation = activation
        self.seed = seed
        self.likelihood = likelihoods_lib.get(likelihood)
        self.posterior_family = posteriors_lib.get(posterior)
        prior = priors_lib.get(prior)
        compatibility.check(self._option_levels(encoder, prior))
        # The decoder's outputs: the likelihood's parameters for every value.
        self.params_shape = self.data_shape[:-1] + (
            self.data_shape[-1] * self.likelihood.params_size,
        )

        # === Layers ===
        self.encoder = networks.build_encoder(
            encoder, self._encoder_input_shape(),
            self.posterior_family.params_size(self.latent_dim),
            self.hidden_units, self.conv_filters, activation,
        )
        self.decoder = networks.build_decoder(
            decoder, self._decoder_input_size(), self.params_shape,
            self.hidden_units, self.conv_filters, activation,
        )
        self.prior = prior
        # Named networks are rebuilt from the widths on loading; others saved.
        self._network_names = {
            "encoder": encoder if isinstance(encoder, str) else None,
            "decoder": decoder if isinstance(decoder, str) else None,
        }

        # === State ===
        self._kl_weight = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(
                validation.non_negative("kl_weight", kl_weight)
            ),
            trainable=False,
            name="kl_weight",
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")
        self.build(self._model_input_shape())

    def _option_levels(self, encoder, prior):
        """This model's level of each option of `keras_vae.compatibility`."""
        return {
            "likelihood": registry.name_of(self.likelihood, likelihoods_lib._REGISTRY),
            "prior": registry.name_of(prior, priors_lib._REGISTRY),
            "posterior": registry.name_of(self.posterior_family, posteriors_lib._REGISTRY),
            "objective": self.objective,
            "network": encoder if isinstance(encoder, str) else None,
            "conditional": "yes" if getattr(self, "_classes", None) else "no",
            "free_bits": "> 0" if self.free_bits > 0 else "0",
            "num_samples": "> 1" if self.num_samples > 1 else "1",
            "use_exact_kl": str(self.use_exact_kl),
        }

    def build(self, input_shape):
        for layer, shape in (
            (self.encoder, (None,) + self._encoder_input_shape()),
            (self.decoder, (None, self._decoder_input_size())),
        ):
            if not layer.built:
                layer.build(shape)
        if not self.prior.built:
            self.prior.attach(self)
            self.prior.build(self.latent_dim)

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
        self.add_loss(self._objective(terms))
        self.reconstruction_tracker.update_state(terms.reconstruction)
        self.kl_tracker.update_state(terms.kl)
        return ops.mean(self.likelihood.distribution_mean(terms.likelihood), axis=0)

    def elbo_terms(self, inputs):
        """The ELBO's parts for a batch, per example (see `ElboTerms`)."""
        x, condition = self.split_inputs(inputs)
        posterior = self.posterior(x, condition)
        z = self.posterior_family.reparameterize(posterior, self._noise(ops.shape(x)[0]))
        likelihood = self.likelihood_distribution(z, condition)
        log_px = self.likelihood.log_prob(likelihood, x)  # (num_samples, batch)
        return ElboTerms(
            reconstruction=-ops.mean(log_px, axis=0),
            kl=self._kl_divergence(posterior, z),
            log_px=log_px, z=z, posterior=posterior, likelihood=likelihood,
        )

    def _objective(self, terms):
        """The batch-mean loss that `call` adds: −ELBO, or −IWAE bound."""
        if self.objective == "iwae":
            log_ratio = (self.prior.log_prob(terms.z)
                         - terms.posterior.log_prob(terms.z))
            log_weights = terms.log_px + self._kl_weight * log_ratio
            bound = tf.reduce_logsumexp(log_weights, axis=0) - math.log(self.num_samples)
            return -ops.mean(bound)
        kl = (self._free_bits_kl(terms.posterior) if self.free_bits > 0
              else ops.mean(terms.kl))
        return ops.mean(terms.reconstruction) + self._kl_weight * kl

    def _free_bits_kl(self, posterior):
        """Σ_j max(λ, mean over the global batch of KL_j) (Kingma et al., 2016).

        Under a distribution strategy the floor applies to the mean over the
        whole global batch (gathered by `keras_vae.replicas`): each replica
        adds R · (its sum of KL_j) / N on the dimensions above the floor and
        λ elsewhere, which Keras divides by the R replicas and sums to the
        one-device value and gradient.
        """
        per_dimension = self._kl_per_dimension_of(posterior)
        local_sum = ops.sum(per_dimension, axis=0)
        gathered = replicas_lib.state(self)
        if gathered is not None:
            context = tf.distribute.get_replica_context()
            global_mean = gathered["kl_mean"]
            share = (context.num_replicas_in_sync * local_sum
                     / ops.cast(gathered["total"], local_sum.dtype))
        else:
            share = local_sum / ops.cast(ops.shape(per_dimension)[0], local_sum.dtype)
            global_mean = tf.stop_gradient(share)
        return ops.sum(ops.where(global_mean > self.free_bits, share, self.free_bits))

    def kl_per_dimension(self, x, condition=None):
        """KL(q(z_j|x) ‖ p(z_j)) per example and latent dimension, `(batch,
        latent_dim)`, for a factorised posterior and prior."""
        return self._kl_per_dimension_of(self.posterior(x, condition))

    def _kl_per_dimension_of(self, posterior):
        prior = self.prior.distribution()
        try:
            return tfd.kl_divergence(posterior.distribution, prior.distribution)
        except (NotImplementedError, AttributeError):
            raise ValueError(
                f"free_bits needs a closed-form KL per latent dimension; the "
                f"prior {type(self.prior).__name__} with the "
                f"{type(self.posterior_family).__name__} posterior has none. Use the "
                "'standard_normal' or 'learnable_gaussian' prior with the 'diagonal' "
                "posterior, or free_bits=0."
            ) from None

    def posterior(self, x, condition=None):
        """q(z|x), a distribution with batch shape `(batch,)`."""
        params = ops.cast(self.encoder(self._encoder_inputs(x, condition)), "float32")
        size = self.posterior_family.params_size(self.latent_dim)
        if math.prod(params.shape[1:]) != size:
            raise ValueError(
                f"The encoder must output {size} values per example (the "
                f"parameters of the {type(self.posterior_family).__name__} "
                f"posterior with latent_dim {self.latent_dim}). Received outputs "
                f"of shape {tuple(params.shape)}."
            )
        return self.posterior_family.distribution(ops.reshape(params, (-1, size)))

    def likelihood_distribution(self, z, condition=None):
        """p(x|z) for z of shape `batch_shape + (latent_dim,)`."""
        flat_z = ops.reshape(z, (-1, self.latent_dim))
        if condition is not None:  # one condition per example, for each sample
            condition = tf.tile(condition, [ops.shape(flat_z)[0] // ops.shape(condition)[0]])
        params = self._decoder_params(self._decoder_inputs(flat_z, condition))
        params = ops.reshape(params, tuple(ops.shape(z)[:-1]) + self.params_shape)
        return self.likelihood.distribution(params, len(self.data_shape))

    def _decoder_params(self, z):
        """The likelihood's parameters, `(batch,) + params_shape`, for z."""
        params = self.decoder(z)
        if math.prod(params.shape[1:]) != math.prod(self.params_shape):
            raise ValueError(
                f"The decoder must output {math.prod(self.params_shape)} values "
                f"per example (prod(input_shape) * {self.likelihood.params_size} "
                f"parameters of the '{type(self.likelihood).__name__}' "
                f"likelihood). Received outputs of shape {tuple(params.shape)}."
            )
        return ops.reshape(params, (-1,) + self.params_shape)

    def _noise(self, batch_size):
        """ε ~ N(0, I) of shape (num_samples, batch_size, latent_dim).

        Under a distribution strategy each replica draws the noise of the
        whole global batch from the shared seed and keeps its own rows
        (their start gathered by `keras_vae.replicas`, so uneven splits
        such as 33 → 17 + 16 work too): replicas never share ε, and a run
        on N replicas sees the same noise as a one-device run on the same
        global batch.
        """
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync if context else 1
        if replicas == 1:
            shape = (self.num_samples, batch_size, self.latent_dim)
            return keras.random.normal(shape, seed=self.seed_generator)
        gathered = replicas_lib.state(self)
        if gathered is None:  # called directly: assume an even split
            start = context.replica_id_in_sync_group * batch_size
            total = replicas * batch_size
        else:
            start, total = gathered["start"], gathered["total"]
        shape = tf.stack([self.num_samples, total, self.latent_dim])
        eps = keras.random.normal(shape, seed=self.seed_generator)
        return eps[:, start : start + batch_size]

    def _kl_divergence(self, posterior, z):
        if self.use_exact_kl:
            try:
                return self.posterior_family.kl_divergence(posterior,
                                                           self.prior.distribution())
            except NotImplementedError:
                pass  # No closed form for this pair: estimate it below.
        return ops.mean(posterior.log_prob(z) - self.prior.log_prob(z), axis=0)

    def _standardize(self, x):
        x = ops.convert_to_tensor(x)
        validation.check_shape(x.shape, self.data_shape)
        return ops.cast(x, "float32")

    # === Conditioning hooks (used by ConditionalVAE) ===
    def split_inputs(self, inputs):
        """`(examples, condition)` of model inputs, checked and cast; the
        plain VAE has no condition (None)."""
        return self._standardize(inputs), None

    def _model_input_shape(self):
        return (None,) + self.data_shape

    def _encoder_input_shape(self):
        return self.data_shape

    def _decoder_input_size(self):
        return self.latent_dim

    def _encoder_inputs(self, x, condition):
        return x

    def _decoder_inputs(self, z, condition):
        return z

    # === Public methods ===
    def encode(self, x):
        """Return the posterior's `(loc, scale)`, each `(batch, latent_dim)`.

        `scale` is the standard deviation of each dimension.
        """
        posterior = self.posterior(*self.split_inputs(x))
        return self.posterior_family.loc_and_scale(posterior)

    def decode(self, z, condition=None):
        """Return the mean of p(x|z) in data space, `(batch,) + input_shape`."""
        z = ops.cast(ops.convert_to_tensor(z), "float32")
        validation.check_shape(z.shape, (self.latent_dim,), name="z")
        params = self._decoder_params(self._decoder_inputs(z, condition))
        return ops.reshape(self.likelihood.mean(params), (-1,) + self.data_shape)

    def sample(self, num_samples, seed=None, condition=None):
        """Decode `num_samples` draws from the prior (the mean images).

        Args:
            num_samples: positive int.
            seed: int for reproducible images, or None for fresh ones.
            condition: for conditional models, what to generate.
        """
        num_samples = validation.positive_int("num_samples", num_samples)
        if seed is None:
            seed = self.seed_generator.next()
        else:
            seed = [0, validation.positive_int("seed", seed, minimum=0)]
        # TFP takes a shape-[2] int32 tensor as a stateless seed.
        seed = ops.cast(seed, "int32")
        return self.decode(self.prior.sample(num_samples, seed=seed), condition)

    def reconstruct(self, x):
        """Decode the posterior mean of each example: x → μ(x) → E[x|μ(x)]."""
        loc, _ = self.encode(x)
        return self.decode(loc, self.split_inputs(x)[1])

    def interpolate(self, x_a, x_b, steps=8):
        """Decode the straight path between the encodings of two examples.

        Args:
            x_a, x_b: single examples of shape `input_shape`.
            steps: int ≥ 2, the number of images, the ends included.

        Returns:
            `(steps,) + input_shape`: decode(μ(x_a)) first, decode(μ(x_b)) last.
        """
        steps = validation.positive_int("steps", steps, minimum=2)
        ends, _ = self.encode(ops.stack([x_a, x_b]))
        t = ops.linspace(0.0, 1.0, steps)[:, None]
        return self.decode((1.0 - t) * ends[0] + t * ends[1])

    # === Training with checked data ===
    def train_step(self, data):
        with replicas_lib.global_batch(self, keras.utils.unpack_x_y_sample_weight(data)[0]):
            return self._multi_worker_logs(super().train_step(data))

    def test_step(self, data):
        with replicas_lib.global_batch(self, keras.utils.unpack_x_y_sample_weight(data)[0]):
            return self._multi_worker_logs(super().test_step(data))

    def predict_step(self, data):
        with replicas_lib.global_batch(self, keras.utils.unpack_x_y_sample_weight(data)[0]):
            return super().predict_step(data)

    def _multi_worker_logs(self, logs):
        # Keras 3 averages the logs of multi-worker runs along axis 0, which
        # scalars lack (tensorflow/tensorflow#72388): give them that axis.
        if not distribute.in_multi_worker_mode(self.distribute_strategy):
            return logs
        return {name: ops.reshape(value, (1,)) for name, value in logs.items()}

    def fit(self, x=None, y=None, validation_data=None, callbacks=None, **kwargs):
        """Keras `fit`, with the data checked first and a NaN guard.

        Unless `callbacks` has one, a `keras_vae.callbacks.StopOnNonFiniteLoss`
        is added: at a NaN or infinite loss, training stops with a message
        and the weights of the last good epoch.
        """
        x = validation.checked_data(x, self.data_shape, self.likelihood, "x")
        validation_data = validation.checked_data(
            validation_data, self.data_shape, self.likelihood, "validation_data"
        )
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)  # a dataset shuffles itself
        callbacks = list(callbacks or [])
        if not any(isinstance(c, callbacks_lib.StopOnNonFiniteLoss) for c in callbacks):
            callbacks.append(callbacks_lib.StopOnNonFiniteLoss())
        return super().fit(x, y, validation_data=validation_data,
                           callbacks=callbacks, **kwargs)

    def evaluate(self, x=None, y=None, **kwargs):
        x = validation.checked_data(x, self.data_shape, self.likelihood, "x")
        return super().evaluate(x, y, **kwargs)

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config.update(
            input_shape=list(self.data_shape),
            latent_dim=self.latent_dim,
            encoder=self._network_config("encoder"),
            decoder=self._network_config("decoder"),
            likelihood=keras.saving.serialize_keras_object(self.likelihood),
            prior=keras.saving.serialize_keras_object(self.prior),
            posterior=keras.saving.serialize_keras_object(self.posterior_family),
            kl_weight=float(np.asarray(self._kl_weight.value)),
            num_samples=self.num_samples,
            use_exact_kl=self.use_exact_kl,
            objective=self.objective,
            free_bits=self.free_bits,
            hidden_units=list(self.hidden_units),
            conv_filters=list(self.conv_filters),
            activation=self.activation,
            seed=self.seed,
        )
        return config

    def _network_config(self, role):
        return self._network_names[role] or keras.saving.serialize_keras_object(
            getattr(self, role)
        )

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder", "likelihood", "prior", "posterior"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

