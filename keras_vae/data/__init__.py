"""Data: the bundled MNIST, other sources, and tf.data pipelines."""

from keras_vae.data.mnist import load_mnist, read_idx
from keras_vae.data.pipeline import BINARIZE_MODES, make_dataset, to_unit_interval
from keras_vae.data.sources import SOURCES, Splits, load

__all__ = [
    "BINARIZE_MODES",
    "SOURCES",
    "Splits",
    "load",
    "load_mnist",
    "make_dataset",
    "read_idx",
    "to_unit_interval",
]
