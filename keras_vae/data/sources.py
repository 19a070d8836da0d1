"""Data sources: MNIST, TFDS datasets, NumPy files and folders of images.

`load(spec)` returns the train and test splits as arrays
`(n, height, width, channels)`, with labels where the source has them.
Sources without a test split keep a fixed, seeded fraction of the examples
for testing.
"""

import dataclasses
import os
import zipfile

import numpy as np

from keras_vae.data import checks, mnist

SOURCES = ("mnist", "tfds:<name>", "npz:<path>", "images:<dir>")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


@dataclasses.dataclass
class Splits:
    """Train and test arrays of one source; labels are None where absent."""

    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    name: str

    @property
    def image_shape(self):
        return tuple(self.x_train.shape[1:])


def load(spec, data_dir=None, image_size=None, test_fraction=0.1, seed=0):
    """Load a source named by `spec`.

    Args:
        spec: `"mnist"`, `"tfds:<name>"`, `"npz:<path>"` or `"images:<dir>"`.
        data_dir: for `mnist`, a folder with the IDX files; for `tfds:`, the
            TFDS data directory.
        image_size: `(height, width)` to resize `images:` to, or None to
            require one size.
        test_fraction: the share held out for testing where a source has no
            test split.
        seed: fixes that hold-out.
    """
    return checks.check_splits(_load(spec, data_dir, image_size, test_fraction, seed))


def _load(spec, data_dir, image_size, test_fraction, seed):
    if not isinstance(spec, str):
        raise ValueError(f"Expected a dataset name. Received: {spec!r}")
    kind, _, argument = spec.partition(":")
    if kind == "mnist" and not argument:
        (x_train, y_train), (x_test, y_test) = mnist.load_mnist(data_dir)
        return Splits(x_train, y_train, x_test, y_test, "mnist")
    if kind == "tfds" and argument:
        return _load_tfds(argument, data_dir, test_fraction, seed)
    if kind == "npz" and argument:
        return _load_npz(argument, test_fraction, seed)
    if kind == "images" and argument:
        return _load_images(argument, image_size, test_fraction, seed)
    raise ValueError(
        f"Unknown dataset: {spec!r}. Expected one of: {', '.join(SOURCES)}."
    )


def _with_channels(x):
    x = np.asarray(x)
    return x[..., None] if x.ndim == 3 else x


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
    return Splits(x[train], pick(train), x[test], pick(test), name)


# === TensorFlow Datasets ===
def _load_tfds(name, data_dir, test_fraction, seed):
    x_train, y_train = _tfds_split(name, "train", data_dir)
    try:
        x_test, y_test = _tfds_split(name, "test", data_dir)
    except ValueError:
        return _hold_out(x_train, y_train, test_fraction, seed, f"tfds:{name}")
    return Splits(x_train, y_train, x_test, y_test, f"tfds:{name}")


def _tfds_split(name, split, data_dir):
    """One split as arrays: its 'image' feature, and 'label' when present."""
    import tensorflow_datasets as tfds

    try:
        dataset = tfds.load(name, split=split, data_dir=data_dir, download=False)
    except Exception as error:  # TFDS raises several types for missing data.
        raise ValueError(
            f"Could not load the {split!r} split of the TFDS dataset {name!r} "
            f"from {data_dir or '~/tensorflow_datasets'}: {error}\nThis machine "
            "may be offline: prepare the data where there is network (`tfds "
            f"build {name}`) and pass its folder as data_dir (--data-dir)."
        ) from None
    if "image" not in dataset.element_spec:
        raise ValueError(
            f"The TFDS dataset {name!r} has no 'image' feature (it has "
            f"{sorted(dataset.element_spec)}): keras_vae needs images."
        )
    batches = list(tfds.as_numpy(dataset.batch(4096)))
    images = _with_channels(np.concatenate([b["image"] for b in batches]))
    if "label" not in dataset.element_spec:
        return images, None
    return images, np.concatenate([b["label"] for b in batches])


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
        return Splits(_with_channels(arrays["x_train"]), arrays.get("y_train"),
                      _with_channels(arrays["x_test"]), arrays.get("y_test"), name)
    if "x" in arrays:
        return _hold_out(_with_channels(arrays["x"]), arrays.get("y"),
                         test_fraction, seed, name)
    raise ValueError(
        f"{path} holds the arrays {sorted(arrays)}. Expected 'x_train' and "
        "'x_test' (with optional 'y_train', 'y_test'), or 'x' (with optional "
        "'y')."
    )


# === Folders of images ===
def _load_images(folder, image_size, test_fraction, seed):
    from PIL import Image

    paths = _image_paths(folder)
    labels = _folder_labels(folder, paths)
    if image_size and (min(image_size) < 1 or max(image_size) > checks.MAX_IMAGE_SIDE):
        raise ValueError(
            f"image_size {image_size[0]}x{image_size[1]} is out of range: each side "
            f"must be 1 to {checks.MAX_IMAGE_SIDE} pixels.")
    images = [_read_image(Image, path, image_size) for path in paths]
    _check_one_size(images, paths)
    return _hold_out(_with_channels(np.stack(images)), labels, test_fraction,
                     seed, f"images:{folder}")


def _read_image(Image, path, image_size):
    """One image as an array, or a ValueError naming the file."""
    try:
        with Image.open(path) as image:
            side = max(image.size)
            if side > checks.MAX_IMAGE_SIDE and not image_size:
                raise ValueError(
                    f"it is {image.size[0]}x{image.size[1]} pixels; the limit is "
                    f"{checks.MAX_IMAGE_SIDE} per side (pass --image-size to resize)")
            image = image.convert("L" if image.mode in ("L", "1", "I;16") else "RGB")
            if image_size:
                image = image.resize((image_size[1], image_size[0]))
            return np.asarray(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(
            f"Could not read the image {path}: {error}. Remove or replace the file."
        ) from None


def _image_paths(folder):
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"No folder of images at {folder}.")
    paths = sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(folder)
        for name in names
        if name.lower().endswith(IMAGE_EXTENSIONS)
    )
    if not paths:
        raise ValueError(
            f"No images in {folder}: expected files ending in "
            f"{', '.join(IMAGE_EXTENSIONS)}."
        )
    return paths


def _folder_labels(folder, paths):
    """Labels from first-level subfolders (as Keras does), if every image has one."""
    parts = [os.path.relpath(p, folder).split(os.sep) for p in paths]
    if not all(len(p) > 1 for p in parts):
        return None
    index = {name: i for i, name in enumerate(sorted({p[0] for p in parts}))}
    return np.array([index[p[0]] for p in parts], dtype="int64")


def _check_one_size(images, paths):
    first = images[0].shape
    for image, path in zip(images, paths, strict=True):
        if image.shape != first:
            raise ValueError(
                f"Images of different sizes: {paths[0]} is {_size(first)} but "
                f"{path} is {_size(image.shape)}. Pass image_size "
                "(--image-size HEIGHTxWIDTH) to resize all of them."
            )


def _size(shape):
    channels = shape[2] if len(shape) == 3 else 1
    return f"{shape[0]}x{shape[1]} with {channels} channel(s)"
