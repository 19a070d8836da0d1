"""Priors p(z): pluggable objects the VAE takes by name or instance.

A prior is a Keras layer (so that learnable priors can own weights) whose
`distribution()` returns a TFP distribution with event shape `[latent_dim]`.
The model calls `build(latent_dim)` before use.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


class Prior(keras.layers.Layer):
    """Base class for priors over the latent code z.

    Subclasses implement `distribution()`, which returns p(z) with event
    shape `[latent_dim]`; `self.latent_dim` is set by `build(latent_dim)`.
    """

    def build(self, latent_dim):
        self.latent_dim = int(latent_dim)

    def sample(self, num_samples, seed=None):
        """Draw `num_samples` latent codes, shape `(num_samples, latent_dim)`."""
        return self.distribution().sample(num_samples, seed=seed)


@keras.saving.register_keras_serializable(package="keras_vae")
class StandardNormal(Prior):
    """The standard normal prior p(z) = N(0, I) of the course notes.

    With a diagonal Gaussian posterior the KL has the closed form
    ½ Σ (σ² + μ² − 1 − ln σ²).
    """

    def distribution(self):
        zeros = tf.zeros([self.latent_dim], dtype=tf.float32)
        return tfd.Independent(
            tfd.Normal(loc=zeros, scale=1.0), reinterpreted_batch_ndims=1
        )

    def sample(self, num_samples, seed=None):
        shape = tf.stack([tf.cast(num_samples, tf.int32), self.latent_dim])
        if seed is None:
            # A stateful draw: LiteRT has it as a builtin op, so exported
            # sampling runs on devices (stateless ops would need Flex).
            return tf.random.normal(shape)
        return tf.random.stateless_normal(shape, seed=seed)


_REGISTRY = {"standard_normal": StandardNormal}


def get(identifier):
    """Resolve a prior from a name, a config dict or an instance."""
    if isinstance(identifier, Prior):
        return identifier
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    if isinstance(identifier, str) and identifier in _REGISTRY:
        return _REGISTRY[identifier]()
    raise ValueError(
        f"Unknown prior: {identifier!r}. Expected one of {sorted(_REGISTRY)}, "
        "or a keras_vae.priors.Prior instance."
    )
