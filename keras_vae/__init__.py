"""keras_vae: variational autoencoders for Keras 3 and TensorFlow Probability.

The library: `VAE`, `ConditionalVAE` and `HierarchicalVAE` (keras_vae.models), the
distributions they are made of (`likelihoods`, `posteriors`, `priors`),
`callbacks` and `distribute` for training, `networks`, `objectives`, `samplers`
and anomaly `detectors` (with their `scores`) fitted after training
(keras_vae.models), `standardized` for tables' columns, `data`, `evaluation` (with
`evaluation.quality` for samples and `evaluation.decoding`),
`plotting`, `export` and the device-side `edge`. The command line and its
run directories (`keras_vae.cli`, `keras_vae.runs`, with the run
configuration in `keras_vae.runs.config`) are built on top and are not
imported here.
"""

from keras_vae import _quiet

if _quiet.started_as_command_line():  # never in a library user's process
    with _quiet.tensorflow_banners_hidden():
        import tensorflow  # noqa: F401  (its start-up banners are filtered here)

from keras_vae import data, edge, evaluation, export, plotting  # noqa: E402
from keras_vae.distributions import likelihoods, posteriors, priors, standardized
from keras_vae.models import detectors, networks, objectives, samplers, scores
from keras_vae.models.conditional import ConditionalVAE
from keras_vae.models.hierarchical import HierarchicalVAE
from keras_vae.models.vae import VAE
from keras_vae.training import callbacks, distribute
from keras_vae.version import __version__

__all__ = [
    "VAE",
    "ConditionalVAE",
    "HierarchicalVAE",
    "callbacks",
    "data",
    "detectors",
    "distribute",
    "edge",
    "evaluation",
    "export",
    "likelihoods",
    "networks",
    "objectives",
    "plotting",
    "posteriors",
    "priors",
    "samplers",
    "scores",
    "standardized",
    "__version__",
]
