"""keras_vae: variational autoencoders for Keras 3 and TensorFlow Probability."""

from keras_vae._quiet import tensorflow_banners_hidden

with tensorflow_banners_hidden():
    import tensorflow  # noqa: F401  (started here so that its banners are hidden)
    import tensorflow_probability  # noqa: F401

from keras_vae import (
    callbacks,
    data,
    edge,
    evaluation,
    export,
    likelihoods,
    plotting,
    posteriors,
    priors,
)
from keras_vae.conditional import ConditionalVAE
from keras_vae.model import VAE

__version__ = "0.1.0"

__all__ = [
    "VAE",
    "ConditionalVAE",
    "callbacks",
    "data",
    "edge",
    "evaluation",
    "export",
    "likelihoods",
    "plotting",
    "posteriors",
    "priors",
    "__version__",
]
