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


def keras_cache_path():
    """Where Keras caches `mnist.npz`: `$KERAS_HOME/datasets`, else `~/.keras/datasets`."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "datasets", "mnist.npz")


def load_mnist(path=None, verify=True, download=True):
    """Load MNIST as `((x_train, y_train), (x_test, y_test))`.

    Images are uint8 arrays of shape `(n, 28, 28, 1)`, labels uint8 `(n,)`.
    The files are looked for, in this order:

    1. `path`, a folder with the four IDX files, when given;
    2. `$KERAS_VAE_MNIST_DIR`, when set;
    3. the repository's `data/mnist` (when run from a checkout);
    4. Keras's cached `mnist.npz` (`~/.keras/datasets`, or `$KERAS_HOME`);
    5. a download through `keras.datasets.mnist.load_data()` (when online,
       and `download` is true).

    An error names every place looked in and how to supply the files.

    Args:
        path: folder with the four IDX files.
        verify: check each IDX file's sha256 against the published value.
        download: allow step 5.
    """
    folder = path or os.environ.get("KERAS_VAE_MNIST_DIR")
    if folder:  # asked for explicitly: no fallback that would hide a typo
        return _read_folder(folder, verify)
    if os.path.exists(os.path.join(DEFAULT_MNIST_DIR, _FILES["train_images"])):
        return _read_folder(DEFAULT_MNIST_DIR, verify)
    cached = keras_cache_path()
    if os.path.exists(cached):
        return _read_npz(cached)
    failure = "downloads not allowed (download=False)"
    if download:
        try:
            import keras

            keras.datasets.mnist.load_data()
            return _read_npz(cached)
        except Exception as error:  # no network, a proxy, a full disk...
            failure = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    raise FileNotFoundError(
        "MNIST was not found. Looked in: the KERAS_VAE_MNIST_DIR environment "
        f"variable (not set); the repository copy {DEFAULT_MNIST_DIR} (absent: "
        f"the package is installed, not run from a checkout); Keras's cache "
        f"{cached} (absent); a download with keras.datasets.mnist.load_data() "
        f"({failure}). Fix: set KERAS_VAE_MNIST_DIR to a folder with "
        f"{', '.join(_FILES.values())} (the repository's data/mnist has them), "
        "or run keras.datasets.mnist.load_data() once on a machine online and "
        "copy ~/.keras/datasets/mnist.npz here."
    )


def _read_folder(path, verify):
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


def _read_npz(path):
    """Keras's `mnist.npz`: x_train, y_train, x_test, y_test."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {key: f[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(
            f"{path} is not Keras's MNIST file ({type(error).__name__}: {error}). "
            "Delete it to download it again, or set KERAS_VAE_MNIST_DIR."
        ) from None
    return (
        (arrays["x_train"].astype(np.uint8)[..., None], arrays["y_train"].astype(np.uint8)),
        (arrays["x_test"].astype(np.uint8)[..., None], arrays["y_test"].astype(np.uint8)),
    )
