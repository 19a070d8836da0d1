"""The repository's MNIST copy and its IDX reader."""

import gzip
import shutil

import numpy as np
import pytest

from keras_vae.data import mnist


def test_mnist_matches_the_published_checks():
    (x_train, y_train), (x_test, y_test) = mnist.load_mnist()
    assert x_train.shape == (60000, 28, 28, 1) and x_test.shape == (10000, 28, 28, 1)
    assert x_train.dtype == np.uint8
    np.testing.assert_array_equal(
        np.bincount(y_train),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    )
    assert x_train.mean() == pytest.approx(33.318, abs=1e-3)
    assert len(y_test) == 10000


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "train-images-idx3-ubyte.gz")):
        mnist.load_mnist(tmp_path)


def _copy_mnist(tmp_path):
    shutil.copytree(mnist.DEFAULT_MNIST_DIR, tmp_path / "m")
    return tmp_path / "m"


def test_truncated_idx_file_is_a_clear_error(tmp_path):
    folder = _copy_mnist(tmp_path)
    path = folder / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(path, "rb") as f:
        raw = f.read()
    path.chmod(0o644)
    with gzip.open(path, "wb") as f:
        f.write(raw[:-100])
    with pytest.raises(ValueError, match=r"truncated or corrupt.*\(10000,\)"):
        mnist.read_idx(str(path))
    with pytest.raises(ValueError, match=r"corrupt: its sha256 differs"):
        mnist.load_mnist(folder)


def test_non_idx_file_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"not an idx file at all")
    with pytest.raises(ValueError, match="not an IDX file: expected the magic number"):
        mnist.read_idx(str(path))
    plain = tmp_path / "broken.gz"
    plain.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(ValueError, match="Could not read the IDX file"):
        mnist.read_idx(str(plain))
