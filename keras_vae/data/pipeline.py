"""tf.data pipelines: caching, shuffling, batching, scaling, binarization.

`stream(split, ...)` makes the batches of a `Split` (`keras_vae.data.splits`)
in memory that does not grow with the data: the images stay uint8 until a
batch is scaled to [0, 1] (and binarized), a cache holds uint8 images (in
memory within `CACHE_MEMORY_MIB`, on disk under `cache_dir` beyond it), and
the shuffle buffer is bounded. `make_dataset(x, ...)` does the same for
arrays held in memory. Both have tf.data's autotuning off
(`keras_vae.data.untuned` says why).

Binarization modes (the standard MNIST likelihood protocol is "dynamic"):

- `"dynamic"`: each training image is replaced by a fresh Bernoulli draw
  (pixel = 1 with probability equal to its grey level) every epoch; the test
  split is binarized once with a fixed seed.
- `"static"`: every split is binarized once with a fixed seed: example i
  always gets the same draw, whatever the order of reading.
- `"none"`: grey levels in [0, 1].
"""

import glob
import hashlib
import json
import math
import os

import tensorflow as tf

from keras_vae.data import augment as augment_lib
from keras_vae.data.untuned import untuned

BINARIZE_MODES = ("dynamic", "static", "none")
#: The most examples a shuffle buffer holds, and the most bytes (uint8).
SHUFFLE_BUFFER = 10_000
SHUFFLE_BUFFER_MIB = 512
#: A split's decoded images are cached in memory up to this size.
CACHE_MEMORY_MIB = 512


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
    """Return a batched, prefetched `tf.data.Dataset` of images held in memory.

    Args:
        x: array `(n, height, width, channels)`, uint8 (0–255) or float in [0, 1].
        batch_size: the global batch size (split across replicas by Keras).
        binarize: one of `BINARIZE_MODES`.
        training: a training split is shuffled and, with `"dynamic"`,
            binarized afresh every epoch; other splits are fixed.
        seed: fixes the shuffle order and every binarization.
        shuffle: shuffle a training split (reshuffled every epoch).
        cache: kept for compatibility: arrays are in memory already.
        drop_remainder: drop the last partial batch (static shapes for TPUs).
        labels: optional integer labels `(n,)`; elements are then the
            model's inputs made by `join(images, labels)`.
        join: how a batch of images and labels becomes the model's inputs:
            pass the model's `join_inputs`; by default the dicts
            `{"images": ..., "labels": ...}` that a `ConditionalVAE` takes.
    """
    from keras_vae.data.splits import array_split

    del cache
    return stream(array_split("arrays", x, labels), batch_size, binarize=binarize,
                  training=training, seed=seed, shuffle=shuffle,
                  drop_remainder=drop_remainder, join=join)


def stream(split, batch_size, binarize="none", training=False, seed=0, shuffle=True,
           drop_remainder=False, join=None, labels=True, shard=(1, 0), cache_dir=None,
           cache_memory_mib=CACHE_MEMORY_MIB, shuffle_buffer=None, skip_bad_files=False,
           augment=()):
    """The batches of `split`: the model's inputs (images in [0, 1], with
    labels joined by `join` where the split has them).

    Args:
        split: a `keras_vae.data.Split`.
        batch_size, binarize, training, seed, shuffle, drop_remainder, join:
            as `make_dataset`'s.
        labels: give the split's labels to `join` (a conditional model);
            otherwise the elements are the images alone.
        shard: `(workers, worker)`: this worker's part of the split.
        cache_dir: cache the split on disk here (uint8); without it, a split
            within `cache_memory_mib` is cached in memory and a larger one
            decoded every epoch.
        cache_memory_mib: the largest split (decoded, uint8) cached in memory.
        shuffle_buffer: examples in the shuffle buffer, which follows the
            file-level shuffle of shards, TFDS and cached folders; by default
            `SHUFFLE_BUFFER`, at most `SHUFFLE_BUFFER_MIB` of images. Given,
            it is used for every file source.
        skip_bad_files: skip examples that fail to decode instead of stopping.
        augment: names of `keras_vae.data.augment.AUGMENTATIONS` applied to
            a training split's batches.
    """
    if binarize not in BINARIZE_MODES:
        raise ValueError(f"Unknown binarize mode: {binarize!r}. Expected one of "
                         f"{list(BINARIZE_MODES)}.")
    augment_lib.check_shape(augment, split.image_shape)
    shuffled = training and shuffle
    fresh_every_epoch = binarize == "dynamic" and training
    static = binarize != "none" and not fresh_every_epoch
    cache = _cache_place(split, shard, cache_dir, cache_memory_mib,
                         (binarize, seed) if static else None)
    if cache is None and static and not training and _fits(split, shard, cache_memory_mib):
        cache = ""  # a fixed split read several times (evaluate): draw it once
    # A cached split is read once in a shuffled order, then shuffled again
    # from the cache in a bounded buffer every epoch.
    dataset = split.dataset(shard, order=seed if shuffled else None,
                            reshuffle=cache is None, counted=not skip_bad_files)
    if skip_bad_files:
        dataset = dataset.ignore_errors()
    if static:  # example i's draw, whatever the order: cached with the images
        dataset = dataset.map(lambda e: {**e, "images": _static_draw(e["images"], seed,
                                                                     e["index"])},
                              num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset if cache is None else dataset.cache(cache)
    if shuffled and (cache is not None or not split.examples_shuffled
                     or shuffle_buffer is not None):
        dataset = dataset.shuffle(_buffer(split, shuffle_buffer), seed=seed,
                                  reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(lambda e: {**e, "images": to_unit_interval(e["images"])},
                          num_parallel_calls=tf.data.AUTOTUNE)
    if training:
        dataset = augment_lib.augmented(dataset, augment, seed)
    if fresh_every_epoch:
        dataset = _fresh_draws(dataset, seed)
    dataset = dataset.map(_inputs(split.has_labels and labels, join))
    return untuned(dataset.prefetch(tf.data.AUTOTUNE))


def _fresh_draws(dataset, seed):
    """Each batch binarized by a new Bernoulli draw (`binarize="dynamic"`):
    Dataset.random draws new seeds on every pass over the data."""
    noise = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip((dataset, noise)).map(
        lambda e, r: {**e, "images": _bernoulli(e["images"], tf.stack(
            [r, tf.constant(0, tf.int64)]))},
        num_parallel_calls=tf.data.AUTOTUNE)


def _static_draw(images, seed, index):
    """The example's fixed Bernoulli draw, in its own dtype (uint8 0/255)."""
    bits = _bernoulli(to_unit_interval(images), tf.stack([tf.cast(seed, tf.int64), index]))
    return tf.cast(bits * (255.0 if images.dtype.is_integer else 1.0), images.dtype)


def _inputs(has_labels, join):
    def inputs(element):
        if not has_labels:
            return element["images"]
        if join is None:
            return {"images": element["images"], "labels": element["labels"]}
        return join(element["images"], element["labels"])
    return inputs


def _fits(split, shard, cache_memory_mib):
    return split.count * math.prod(split.image_shape) // shard[0] <= cache_memory_mib * 2**20


def _cache_place(split, shard, cache_dir, cache_memory_mib, drawn=None):
    """None (no cache), "" (memory) or a file under `cache_dir` (its name
    from the split, the worker's shard and `drawn`, the static draw's mode
    and seed that the cached images carry)."""
    if split.files is None:
        return None  # arrays in memory, or TFDS (which reads its own files)
    if cache_dir is None:
        return "" if _fits(split, shard, cache_memory_mib) else None
    os.makedirs(cache_dir, exist_ok=True)
    key = hashlib.sha256(json.dumps([split.name, split.count, split.image_shape, shard,
                                     drawn, split.files]).encode()).hexdigest()[:16]
    prefix = os.path.join(cache_dir, f"{split.name.rsplit(' ', 1)[-1]}-{key}")
    for stale in glob.glob(glob.escape(prefix) + "*.lockfile"):
        os.remove(stale)  # left by a run that stopped while writing the cache
    return prefix


def _buffer(split, shuffle_buffer):
    if shuffle_buffer is not None:
        return max(1, min(shuffle_buffer, split.count))
    per_image = max(1, math.prod(split.image_shape))
    return max(1, min(SHUFFLE_BUFFER, split.count, SHUFFLE_BUFFER_MIB * 2**20 // per_image))


def count_batches(count, batch_size, drop_remainder=False):
    """The number of batches of `count` examples."""
    return count // batch_size if drop_remainder else math.ceil(count / batch_size)


