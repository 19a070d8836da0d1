"""Data sources: MNIST, TFDS datasets, NumPy files, folders of images,
folders of TFRecord shards, and numeric tables (CSV and Parquet files).

`load(spec)` returns the train and test splits as `Split`s
(`keras_vae.data.splits`): streams of uint8 images, with labels where the
source has them. MNIST and `npz:` arrays are held in memory (integers as
uint8); `images:`, `tfrecord:` and `tfds:` are read file by file as they
are used. Sources without a test split keep a fixed, seeded share for
testing: of the files of a folder, of the examples of an array, the last
examples of a TFDS split.
"""

import os
import zipfile

import numpy as np

from keras_vae.data import checks, folders, mnist, records, tables
from keras_vae.data.splits import Splits, array_split

SOURCES = ("mnist", "tfds:<name>", "npz:<path>", "images:<dir>", "tfrecord:<dir>",
           "csv:<path>", "parquet:<path>")
IMAGE_EXTENSIONS = folders.IMAGE_EXTENSIONS


def load(spec, data_dir=None, image_size=None, test_fraction=0.1, seed=0, label_column=None):
    """Load a source named by `spec`.

    Args:
        spec: `"mnist"`, `"tfds:<name>"`, `"npz:<path>"`, `"images:<dir>"`
            or `"tfrecord:<dir>"`.
        data_dir: for `mnist`, a folder with the IDX files; for `tfds:`, the
            TFDS data directory.
        image_size: `(height, width)` to resize `images:` to, or None to
            require one size.
        test_fraction: the share held out for testing where a source has no
            test split.
        seed: fixes that hold-out.
        label_column: a table's column of labels (`csv:`, `parquet:`).
    """
    if not isinstance(spec, str):
        raise ValueError(f"Expected a dataset name. Received: {spec!r}")
    kind, _, argument = spec.partition(":")
    if kind in tables.KINDS and argument:
        return tables.load(kind, argument, label_column, test_fraction, seed)
    if label_column is not None:
        raise ValueError(f"label_column names a column of a table (csv:<path>, "
                         f"parquet:<path>); {spec!r} is not one. Leave it out.")
    if kind == "mnist" and not argument:
        (x_train, y_train), (x_test, y_test) = mnist.load_mnist(data_dir)
        return _from_arrays("mnist", x_train, y_train, x_test, y_test)
    if kind == "tfds" and argument:
        from keras_vae.data import tfds_source

        return tfds_source.load(argument, data_dir, test_fraction)
    if kind == "npz" and argument:
        return _load_npz(argument, test_fraction, seed)
    if kind == "images" and argument:
        return folders.load(argument, image_size, test_fraction, seed)
    if kind == "tfrecord" and argument:
        return records.load(argument)
    raise ValueError(
        f"Unknown dataset: {spec!r}. Expected one of: {', '.join(SOURCES)}."
    )


def from_arrays(x_train, x_test, y_train=None, y_test=None, name="arrays"):
    """`Splits` of arrays held in memory (`(n, height, width[, channels])`,
    uint8 or floats in [0, 1]), checked as a source's are."""
    return _from_arrays(name, x_train, y_train, x_test, y_test)


def _from_arrays(name, x_train, y_train, x_test, y_test):
    x_train, x_test = _images(x_train), _images(x_test)
    for part, x in (("x_train", x_train), ("x_test", x_test)):
        checks.check_images(x, f"{name} {part}")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"{name}: x_train has images of shape {x_train.shape[1:]} "
            f"but x_test {x_test.shape[1:]}. Both splits must have one shape."
        )
    for part, labels, x in (("y_train", y_train, x_train), ("y_test", y_test, x_test)):
        if labels is not None:
            checks.check_labels(labels, len(x), f"{name} {part}")
    class_names = None
    if y_train is not None and y_test is not None:
        found = int(max(np.max(y_train, initial=0), np.max(y_test, initial=0))) + 1
        class_names = [str(i) for i in range(found)]
    return Splits(array_split(f"{name} train", x_train, y_train),
                  array_split(f"{name} test", x_test, y_test), name, class_names)


def _images(x):
    """`(n, h, w, c)`; integer images as uint8 (never a float copy), and
    boolean images as the levels 0 and 255 (False and True, 0.0 and 1.0)."""
    x = np.asarray(x)
    x = x[..., None] if x.ndim == 3 else x
    if x.dtype == bool:
        return x.astype("uint8") * np.uint8(255)
    if np.issubdtype(x.dtype, np.integer) and x.size and x.min() >= 0 and x.max() <= 255:
        x = x.astype("uint8", copy=False)
    return x


def _hold_out(x, y, test_fraction, seed, name):
    if y is not None:
        checks.check_labels(y, len(x), f"{name} y")
    if len(x) < 2:
        raise ValueError(
            f"{name} holds {len(x)} example(s); at least 2 are needed to keep "
            "one for testing."
        )
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = max(1, int(round(len(x) * test_fraction)))
    test, train = order[:n_test], order[n_test:]
    pick = (lambda idx: None) if y is None else (lambda idx: y[idx])
    return _from_arrays(name, x[train], pick(train), x[test], pick(test))


# === NumPy files ===
def _load_npz(path, test_fraction, seed):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No .npz file at {path}.")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError(
                "it holds one array (a .npy file), not named arrays. Save with "
                "np.savez(path, x_train=..., x_test=...) or np.savez(path, x=...)")
        with loaded as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path} is not a readable .npz file: {error}") from None
    name = f"npz:{path}"
    if "x_train" in arrays and "x_test" in arrays:
        return _from_arrays(name, arrays["x_train"], arrays.get("y_train"),
                            arrays["x_test"], arrays.get("y_test"))
    if "x" in arrays:
        return _hold_out(_images(arrays["x"]), arrays.get("y"), test_fraction, seed, name)
    raise ValueError(
        f"{path} holds the arrays {sorted(arrays)}. Expected 'x_train' and "
        "'x_test' (with optional 'y_train', 'y_test'), or 'x' (with optional "
        "'y')."
    )
