"""tf.data pipelines: scaling, binarization, shuffling, batching.

Binarization modes (the standard MNIST likelihood protocol is "dynamic"):

- `"dynamic"`: each training image is replaced by a fresh Bernoulli draw
  (pixel = 1 with probability equal to its grey level) every epoch; the test
  split is binarized once with a fixed seed.
- `"static"`: every split is binarized once with a fixed seed.
- `"none"`: grey levels in [0, 1].
"""

import numpy as np
import tensorflow as tf

BINARIZE_MODES = ("dynamic", "static", "none")


def to_unit_interval(x):
    """Scale integer images (0–255) to float32 in [0, 1]; floats pass as they are."""
    x = tf.convert_to_tensor(x)
    if x.dtype.is_integer:
        return tf.cast(x, tf.float32) / 255.0
    return tf.cast(x, tf.float32)


def _bernoulli(x, seed):
    return tf.cast(tf.random.stateless_uniform(tf.shape(x), seed=seed) < x, tf.float32)


def make_dataset(x, batch_size, binarize="none", training=False, seed=0,
                 shuffle=True, cache=True, drop_remainder=False, labels=None, join=None):
    """Return a batched, prefetched `tf.data.Dataset` of images.

    Args:
        x: array `(n, height, width, channels)`, uint8 (0–255) or float in [0, 1].
        batch_size: the global batch size (split across replicas by Keras).
        binarize: one of `BINARIZE_MODES`.
        training: a training split is shuffled and, with `"dynamic"`,
            binarized afresh every epoch; other splits are fixed.
        seed: fixes the shuffle order and every binarization.
        shuffle: shuffle a training split (reshuffled every epoch).
        cache: cache the scaled (and statically binarized) images in memory.
        drop_remainder: drop the last partial batch (static shapes for TPUs).
        labels: optional integer labels `(n,)`; elements are then the
            model's inputs made by `join(images, labels)`.
        join: how a batch of images and labels becomes the model's inputs:
            pass the model's `join_inputs`; by default the dicts
            `{"images": ..., "labels": ...}` that a `ConditionalVAE` takes.
    """
    if binarize not in BINARIZE_MODES:
        raise ValueError(
            f"Unknown binarize mode: {binarize!r}. Expected one of "
            f"{list(BINARIZE_MODES)}."
        )
    # Labelled elements are {"images", "labels"} inside the pipeline, and the
    # model's inputs (`join`) at its end.
    elements = np.asarray(x) if labels is None else {
        "images": np.asarray(x), "labels": np.asarray(labels, dtype="int32")}
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    dataset = dataset.map(_on_images(to_unit_interval), num_parallel_calls=tf.data.AUTOTUNE)
    fresh_every_epoch = binarize == "dynamic" and training
    if binarize != "none" and not fresh_every_epoch:
        # Example i always gets the same draw, whatever the iteration order.
        dataset = dataset.enumerate().map(
            lambda i, element: _on_images(_bernoulli)(
                element, tf.stack([tf.cast(seed, tf.int64), i])),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    if cache:
        dataset = dataset.cache()
    if training and shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if fresh_every_epoch:
        # Dataset.random draws new seeds on every pass over the data.
        noise = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        dataset = tf.data.Dataset.zip((dataset, noise)).map(
            lambda element, r: _on_images(_bernoulli)(
                element, tf.stack([r, tf.constant(0, tf.int64)])),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if labels is not None and join is not None:
        dataset = dataset.map(lambda element: join(element["images"], element["labels"]))
    return dataset.prefetch(tf.data.AUTOTUNE)


def _on_images(function):
    """Apply `function` to an element's images, whether or not it has labels."""
    def apply(element, *args):
        if isinstance(element, dict):
            return {**element, "images": function(element["images"], *args)}
        return function(element, *args)
    return apply
