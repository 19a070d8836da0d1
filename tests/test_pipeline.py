"""Preprocessing: scaling, binarization modes, shuffling and batching."""

import numpy as np
import pytest

from keras_vae import data


@pytest.fixture(scope="module")
def images():
    return data.load("mnist").x_train[:300]


def _epoch(dataset):
    return np.concatenate(list(dataset.as_numpy_iterator()))


def test_scaling_without_binarization(images):
    dataset = data.make_dataset(images, 64, binarize="none", shuffle=False)
    x = _epoch(dataset)
    np.testing.assert_allclose(x, images / 255.0, rtol=1e-6)
    assert x.dtype == np.float32


def test_dynamic_binarization_is_fresh_every_epoch(images):
    dataset = data.make_dataset(images, 64, binarize="dynamic", training=True,
                                shuffle=False, seed=3)
    first, second = _epoch(dataset), _epoch(dataset)
    assert set(np.unique(first)) == {0.0, 1.0}
    changed = np.mean(first != second)
    assert changed > 0.01  # new draws each epoch ...
    # ... of the right probability: each pixel is 1 with probability x / 255.
    assert abs(first.mean() - images.mean() / 255) < 0.005
    # and only where the grey level is strictly between 0 and 1.
    assert not np.any((first != second) & ((images == 0) | (images == 255)))


def test_dynamic_mode_fixes_the_test_split(images):
    test = data.make_dataset(images, 64, binarize="dynamic", training=False, seed=3)
    first, second = _epoch(test), _epoch(test)
    np.testing.assert_array_equal(first, second)
    again = data.make_dataset(images, 64, binarize="dynamic", training=False, seed=3)
    np.testing.assert_array_equal(first, _epoch(again))
    other_seed = data.make_dataset(images, 64, binarize="dynamic", training=False, seed=4)
    assert np.any(first != _epoch(other_seed))


def test_static_binarization_is_fixed_even_when_shuffled(images):
    dataset = data.make_dataset(images, 50, binarize="static", training=True, seed=5)
    first, second = _epoch(dataset), _epoch(dataset)
    assert not np.array_equal(first, second)  # reshuffled ...
    # ... but the same set of binarized images.
    key = lambda x: sorted(map(bytes, x.astype(np.uint8).reshape(len(x), -1)))  # noqa: E731
    assert key(first) == key(second)
    assert set(np.unique(first)) == {0.0, 1.0}


def test_batches_and_drop_remainder(images):
    kept = [len(b) for b in data.make_dataset(images, 128).as_numpy_iterator()]
    dropped = [len(b) for b in data.make_dataset(images, 128, drop_remainder=True)]
    assert kept == [128, 128, 44]
    assert dropped == [128, 128]
    spec = data.make_dataset(images, 128, drop_remainder=True).element_spec
    assert spec.shape.as_list() == [128, 28, 28, 1]  # static for accelerators


def test_unknown_binarize_mode_lists_the_valid_ones(images):
    with pytest.raises(ValueError, match=r"Unknown binarize mode: 'always'. Expected one of \['dynamic', 'static', 'none'\]"):
        data.make_dataset(images, 8, binarize="always")
