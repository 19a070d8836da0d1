"""Arrays held in memory as the batches `fit` and `evaluate` give Keras.

`batches(x, batch_size, shuffle)` makes the batches Keras's own array
adapter makes: `batch_size` examples at a time (32 by default), the last
batch partial, in a new random order every epoch when `shuffle`. Each
batch is gathered from the arrays at once by its indices, so an epoch
costs one gather per batch, not one dataset element per example. The
dataset has tf.data's autotuning off (`keras_vae.data.untuned`) and the
auto-shard policy Keras gives arrays (`DATA`: under a multi-worker
strategy each worker takes its share of every batch).
"""

import numpy as np
import tensorflow as tf

from keras_vae.data.untuned import untuned

DEFAULT_BATCH_SIZE = 32  # Keras's default for arrays


def is_in_memory(x):
    """Whether `x` is an array, a tensor, or a dict of them (a conditional
    model's `{"images": ..., "labels": ...}`)."""
    if isinstance(x, dict):
        return bool(x) and all(is_in_memory(value) for value in x.values())
    return isinstance(x, (np.ndarray, tf.Tensor))


def batches(x, batch_size=None, shuffle=False):
    """A `tf.data.Dataset` of the batches of `x` (an array, a tensor or a
    dict of them with the same first dimension)."""
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer. Received: {batch_size}.")
    tensors = tf.nest.map_structure(tf.convert_to_tensor, x)
    sizes = {int(t.shape[0]) for t in tf.nest.flatten(tensors)}
    if len(sizes) != 1:
        raise ValueError(
            "Every array of the inputs needs the same number of examples (the "
            f"first dimension). Received first dimensions {sorted(sizes)}.")
    count = sizes.pop()
    order = tf.data.Dataset.from_tensors(tf.range(count, dtype=tf.int64))
    if shuffle:
        # A fresh seed per epoch (derived from the global seed when
        # keras.utils.set_random_seed was called), one permutation per seed.
        seeds = tf.data.Dataset.random(rerandomize_each_iteration=True).batch(2).take(1)
        order = seeds.map(lambda seed: tf.random.experimental.stateless_shuffle(
            tf.range(count, dtype=tf.int64), seed=seed))
    indices = order.flat_map(lambda order: _split(order, count, batch_size))
    data = tf.data.Dataset.zip((indices, tf.data.Dataset.from_tensors(tensors).repeat()))
    dataset = data.map(
        lambda index, arrays: tf.nest.map_structure(lambda t: tf.gather(t, index), arrays),
        num_parallel_calls=tf.data.AUTOTUNE)
    # Known cardinality: Keras counts the steps of an epoch (progress bars).
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(-(-count // batch_size)))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return untuned(dataset.prefetch(tf.data.AUTOTUNE).with_options(options))


def _split(order, count, batch_size):
    """The batches of indices of `order`: the full ones, then the rest."""
    full = count // batch_size * batch_size
    split = tf.data.Dataset.from_tensor_slices(tf.reshape(order[:full], (-1, batch_size)))
    if full < count:
        split = split.concatenate(tf.data.Dataset.from_tensors(order[full:]))
    return split
