"""keras_vae: variational autoencoders for Keras 3 and TensorFlow Probability."""

from keras_vae import callbacks, datasets, likelihoods, plotting, priors
from keras_vae.model import VAE

__version__ = "0.1.0"

__all__ = [
    "VAE",
    "callbacks",
    "datasets",
    "likelihoods",
    "plotting",
    "priors",
    "__version__",
]
