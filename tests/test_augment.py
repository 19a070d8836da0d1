"""Augmentations of the training images (`keras_vae.data.augment`): what
each does to an image, how often, and where in a run they apply."""

import itertools
import re

import numpy as np
import pytest
import tensorflow as tf

from keras_vae import data
from keras_vae.data import augment


def distinct_images(n, shape=(4, 5, 3), seed=0):
    """Images whose every value differs, so each transform is identifiable."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(np.prod(shape)).reshape(shape) for _ in range(n)]
                    ).astype("float32")


def test_flip_mirrors_half_of_the_images_and_leaves_the_rest():
    images = distinct_images(2000)
    out = np.asarray(augment.flip(tf.constant(images), tf.constant([3, 4], tf.int64)))
    mirrored = np.all(out == images[:, :, ::-1], axis=(1, 2, 3))
    unchanged = np.all(out == images, axis=(1, 2, 3))
    assert np.all(mirrored ^ unchanged)
    assert abs(mirrored.mean() - 0.5) < 4 * np.sqrt(0.25 / 2000)   # four standard errors


def test_channel_order_draws_each_of_the_six_orders_as_often():
    images = distinct_images(6000)
    out = np.asarray(augment.channel_order(tf.constant(images), tf.constant([1, 2], tf.int64)))
    orders = list(itertools.permutations(range(3)))
    found = [next((k for k, order in enumerate(orders)
                   if np.array_equal(out[i], images[i][..., list(order)])), None)
             for i in range(len(images))]
    assert None not in found  # every output is its input with the channels reordered
    counts = np.bincount(found, minlength=6)
    expected = len(images) / 6
    assert np.all(np.abs(counts - expected) < 4 * np.sqrt(expected * 5 / 6)), counts


def test_parse_and_its_errors():
    assert augment.parse("none") == () and augment.parse(None) == ()
    assert augment.parse("channel_order+flip") == ("flip", "channel_order")  # a fixed order
    for bad in ("mirror", "flip+flip", "flip,channel_order", ""):
        with pytest.raises(ValueError, match=rf"Invalid augment: {re.escape(repr(bad))}. "
                                             r"Expected 'none', or "
                                             r"names from \['flip', 'channel_order'\] joined by "
                                             r"'\+' \(each once\), e.g. 'flip\+channel_order'."):
            augment.parse(bad)


def test_the_training_split_is_augmented_afresh_each_epoch_and_the_test_split_never():
    x = (distinct_images(64) % 256).astype("uint8")
    splits = data.from_arrays(x, x)
    both = ("flip", "channel_order")

    def epochs(split, training, seed=0):
        dataset = data.stream(split, 16, training=training, shuffle=False, seed=seed,
                              augment=both, labels=False)
        return [np.concatenate(list(dataset.as_numpy_iterator())) for _ in range(2)]

    first, second = epochs(splits.train, training=True)
    assert not np.array_equal(first, second)           # new draws every epoch
    np.testing.assert_array_equal(first, epochs(splits.train, True)[0])  # the same seed
    assert not np.array_equal(first, epochs(splits.train, True, seed=1)[0])
    scaled = x / 255.0
    for image, source in zip(first, scaled, strict=True):  # each one its own, transformed
        candidates = [source[:, ::-1] if mirrored else source for mirrored in (False, True)]
        assert any(np.allclose(np.sort(image, -1), np.sort(c, -1)) for c in candidates)
    test_first, test_second = epochs(splits.test, training=False)
    np.testing.assert_allclose(test_first, scaled, atol=1e-7)
    np.testing.assert_array_equal(test_first, test_second)


def test_data_that_is_not_images_is_refused():
    with pytest.raises(ValueError, match=r"augment='flip' transforms images shaped \(height, "
                                         r"width, channels\), and this data's examples have "
                                         r"shape \(8,\). Use augment: none."):
        augment.check_shape(("flip",), (8,))
    augment.check_shape((), (8,))
