"""The MNIST copy kept in the repository, read from its original IDX files."""

import gzip
import hashlib
import os
import struct

import numpy as np

#: Where the repository keeps MNIST; override with the KERAS_VAE_MNIST_DIR
#: environment variable or the `path` argument.
DEFAULT_MNIST_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "data",
    "mnist",
)

_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
# sha256 of the uncompressed files (data/mnist/README.md).
_SHA256 = {
    "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
_MAGIC = {2051: 3, 2049: 1}  # images have 3 dimensions, labels 1.


def read_idx(path, expected_sha256=None):
    """Read one (optionally gzip-compressed) IDX file into a uint8 array.

    Raises:
        FileNotFoundError: naming the path, if the file is missing.
        ValueError: naming the path, if the file is not a valid IDX file or
            its checksum differs from `expected_sha256`.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"No MNIST file at {path}.")
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"Could not read the IDX file {path}: {error}") from None
    if expected_sha256 and hashlib.sha256(raw).hexdigest() != expected_sha256:
        raise ValueError(
            f"The IDX file {path} is corrupt: its sha256 differs from the "
            "published one. Restore it from the repository's data/mnist."
        )
    return _parse_idx(raw, path)


def _parse_idx(raw, path):
    magic = struct.unpack(">i", raw[:4])[0] if len(raw) >= 4 else None
    if magic not in _MAGIC:
        raise ValueError(
            f"{path} is not an IDX file: expected the magic number 2051 "
            f"(images) or 2049 (labels), found {magic}."
        )
    ndim = _MAGIC[magic]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}i", raw[4:header])
    if len(raw) - header != int(np.prod(shape)):
        raise ValueError(
            f"The IDX file {path} is truncated or corrupt: its header "
            f"announces shape {shape} ({int(np.prod(shape))} bytes) but it "
            f"holds {len(raw) - header} bytes of data."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_mnist(path=None, verify=True):
    """Load MNIST as `((x_train, y_train), (x_test, y_test))`.

    Images are uint8 arrays of shape `(n, 28, 28, 1)`, labels uint8 `(n,)`.

    Args:
        path: folder with the four IDX files; defaults to the repository's
            `data/mnist`, or `$KERAS_VAE_MNIST_DIR` when set.
        verify: check each file's sha256 against the published value.
    """
    path = path or os.environ.get("KERAS_VAE_MNIST_DIR") or DEFAULT_MNIST_DIR
    arrays = {
        key: read_idx(
            os.path.join(path, name), _SHA256[key] if verify else None
        )
        for key, name in _FILES.items()
    }
    return (
        (arrays["train_images"][..., None], arrays["train_labels"]),
        (arrays["test_images"][..., None], arrays["test_labels"]),
    )
