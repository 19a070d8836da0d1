"""The model's networks as distributions, and the generative methods:
encode, decode, sample, reconstruct, interpolate."""

import inspect
import math

import numpy as np
import tensorflow as tf
from keras import ops

from keras_vae import validation


class Generation:
    """Mixed into `keras_vae.VAE`: q(z|x) and p(x|z) from the networks, and
    the public methods built on them. Conditioning goes through the model's
    hooks (`_encoder_inputs`, `_decoder_inputs`, `_check_labels`,
    `_interpolation_ends`), so the conditional model keeps these signatures.
    """

    def posterior(self, x, labels=None):
        """q(z|x), a distribution with batch shape `(batch,)`."""
        x = self.likelihood.encoder_inputs(x)
        params = ops.cast(self.encoder(self._encoder_inputs(x, labels)), "float32")
        size = self.posterior_family.params_size(self.latent_dim)
        if math.prod(params.shape[1:]) != size:
            raise ValueError(
                f"The encoder must output {size} values per example (the "
                f"parameters of the {type(self.posterior_family).__name__} "
                f"posterior with latent_dim {self.latent_dim}). Received outputs "
                f"of shape {tuple(params.shape)}."
            )
        return self.posterior_family.distribution(ops.reshape(params, (-1, size)))

    def likelihood_distribution(self, z, labels=None):
        """p(x|z) for z of shape `batch_shape + (latent_dim,)`."""
        flat_z = ops.reshape(z, (-1, self.latent_dim))
        if labels is not None:  # one label per example, for each sample
            labels = tf.tile(labels, [ops.shape(flat_z)[0] // ops.shape(labels)[0]])
        params = self._decoder_params(self._decoder_inputs(flat_z, labels))
        params = ops.reshape(params, tuple(ops.shape(z)[:-1]) + self.params_shape)
        return self.likelihood.distribution(params, len(self.data_shape))

    def _decoder_params(self, z):
        """The likelihood's parameters, `(batch,) + params_shape`, for z."""
        params = self.decoder(z)
        if math.prod(params.shape[1:]) != math.prod(self.params_shape):
            raise ValueError(
                f"The decoder must output {math.prod(self.params_shape)} values "
                f"per example (each position of input_shape[:-1] × {self.params_shape[-1]} "
                f"parameters of the '{type(self.likelihood).__name__}' likelihood). "
                f"Received outputs of shape {tuple(params.shape)}."
            )
        return ops.reshape(params, (-1,) + self.params_shape)

    # === Public methods ===
    def encode(self, x):
        """Return the posterior's `(loc, scale)`, each `(batch, latent_dim)`.

        `scale` is the standard deviation of each dimension.
        """
        posterior = self.posterior(*self.split_inputs(x))
        return self.posterior_family.loc_and_scale(posterior)

    def decode(self, z, labels=None):
        """Return the mean of p(x|z) in data space, `(batch,) + input_shape`.

        `labels`: for a conditional model, the class of each z (or rows of
        class weights); None for the plain VAE.
        """
        labels = self._check_labels(labels)
        z = ops.cast(ops.convert_to_tensor(z), "float32")
        validation.check_shape(z.shape, (self.latent_dim,), name="z")
        params = self._decoder_params(self._decoder_inputs(z, labels))
        return ops.reshape(self.likelihood.mean(params), (-1,) + self.data_shape)

    def sample(self, num_samples, seed=None, labels=None, sampler=None, temperature=1.0):
        """Decode `num_samples` codes drawn from the prior, or from a sampler
        (the mean images).

        Args:
            num_samples: positive int.
            seed: int for reproducible images, or None for fresh ones.
            labels: for a conditional model, one int (every image of that
                class) or `num_samples` ints; None for the plain VAE.
            sampler: None or `"prior"` for the prior; the name of a sampler
                added with `add_sampler`; or a `keras_vae.samplers.Sampler`.
            temperature: float ≥ 0, the scale of the noise of each draw (1:
                the prior or sampler itself; below 1: closer to the means).
        """
        num_samples = validation.positive_int("num_samples", num_samples)
        if labels is not None:
            labels = np.broadcast_to(np.asarray(labels), (num_samples,))
        labels = self._check_labels(labels)
        if seed is None:
            seed = self.seed_generator.next()
        else:
            seed = [0, validation.positive_int("seed", seed, minimum=0)]
        # TFP takes a shape-[2] int32 tensor as a stateless seed.
        seed = ops.cast(seed, "int32")
        temperature = validation.non_negative("temperature", temperature)
        return self.decode(draw(self.sampler(sampler), num_samples, seed, temperature), labels)

    # === Samplers ===
    @property
    def samplers(self):
        """The fitted samplers added with `add_sampler`, by name."""
        return dict(getattr(self, "_fitted_samplers", None) or {})

    def add_sampler(self, name, sampler):
        """Keep `sampler` under `name`: `sample(n, sampler=name)` draws from
        it, and it is saved in the model's `.keras` file and exported."""
        if not isinstance(name, str) or not name.isidentifier() or name == "prior":
            raise ValueError(f"Expected a sampler name such as 'gmm'. Received: {name!r}")
        if sampler.latent_dim != self.latent_dim:
            raise ValueError(
                f"The sampler draws codes of size {sampler.latent_dim}; this model's "
                f"latent_dim is {self.latent_dim}.")
        # A plain dict of plain objects: nothing for Keras to track, and the
        # parameters travel in the config (see `keras_vae.samplers`).
        samplers = {**self.samplers, name: sampler}
        object.__setattr__(self, "_fitted_samplers", samplers)

    def sampler(self, name=None):
        """The prior (None or "prior"), a named sampler, or a Sampler passed in."""
        if name is None or name == "prior":
            return self.prior
        if not isinstance(name, str):
            return name
        if name not in self.samplers:
            raise ValueError(
                f"No sampler named {name!r}. This model has the prior"
                + "".join(f", {n!r}" for n in self.samplers)
                + " (fit one with keras-vae fit-sampler).")
        return self.samplers[name]

    def reconstruct(self, x):
        """Decode the posterior mean of each example: x → μ(x) → E[x|μ(x)]."""
        loc, _ = self.encode(x)
        return self.decode(loc, self.split_inputs(x)[1])

    def interpolate(self, x_a, x_b, steps=8, labels=None):
        """Decode the straight path between the encodings of two examples.

        Args:
            x_a, x_b: single examples of shape `input_shape`.
            steps: int ≥ 2, the number of images, the ends included.
            labels: for a conditional model `(label_a, label_b)`: each image
                is encoded with its own label, and the one-hot condition
                moves from one to the other along with z. None otherwise.

        Returns:
            `(steps,) + input_shape`: decode(μ(x_a)) first, decode(μ(x_b)) last.
        """
        steps = validation.positive_int("steps", steps, minimum=2)
        ends, end_labels = self._interpolation_ends(x_a, x_b, labels)
        t = ops.linspace(0.0, 1.0, steps)[:, None]
        path = (1.0 - t) * ends[0] + t * ends[1]
        if end_labels is None:
            return self.decode(path)
        weights = (1.0 - t) * end_labels[0] + t * end_labels[1]
        return self.decode(path, weights)

    def _interpolation_ends(self, x_a, x_b, labels):
        """The two encodings, and for a conditional model their one-hot labels."""
        self._check_labels(labels)
        ends, _ = self.encode(ops.stack([x_a, x_b]))
        return ends, None


def draw(sampler, num_samples, seed=None, temperature=1.0):
    """`sampler.sample(num_samples, seed)`, the noise scaled by `temperature`
    (a float or a tensor). At temperature 1 the argument is not passed, so a
    user's sampler without one still works there."""
    if isinstance(temperature, (int, float)) and temperature == 1:
        return sampler.sample(num_samples, seed=seed)
    if "temperature" not in inspect.signature(sampler.sample).parameters:
        raise ValueError(
            f"{type(sampler).__name__}.sample has no temperature argument, so its draws "
            "cannot be scaled (LiteRT's sample signatures take one). Add "
            "`temperature=1.0` to its sample method, scaling the noise of each draw as "
            "keras_vae.samplers.Sampler describes, or sample at temperature 1 in Python.")
    return sampler.sample(num_samples, seed=seed, temperature=temperature)
