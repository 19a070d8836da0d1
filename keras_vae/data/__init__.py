"""Data: the bundled MNIST, other sources as streams, and tf.data pipelines."""

from keras_vae.data import augment
from keras_vae.data.errors import BadFilesError, find_bad_files, reading
from keras_vae.data.mnist import load_mnist, read_idx
from keras_vae.data.pipeline import BINARIZE_MODES, make_dataset, stream, to_unit_interval
from keras_vae.data.sources import SOURCES, from_arrays, load
from keras_vae.data.splits import Split, Splits

__all__ = [
    "BINARIZE_MODES",
    "BadFilesError",
    "augment",
    "SOURCES",
    "Split",
    "Splits",
    "find_bad_files",
    "from_arrays",
    "load",
    "load_mnist",
    "make_dataset",
    "read_idx",
    "reading",
    "stream",
    "to_unit_interval",
]
