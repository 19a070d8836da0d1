"""Datasets without tf.data's autotuning thread, which holds up every epoch's end.

With autotuning on (tf.data's default), each iterator has a thread that
tunes the pipeline at growing intervals: 10 ms after the start, then
periods that double up to 60 s. In TensorFlow 2.21 an iterator that is
deleted while that thread waits is not freed until the thread's next tuning
time: the deleting thread blocks, on an idle CPU, for up to 60 s. Keras
makes a new iterator every epoch (and every `evaluate`), so an epoch of
7 s could end with a 3 s wait, and a photo epoch of minutes with up to a
minute (measured: `benchmarks/iterator_benchmark.py`).

With autotuning off there is no such thread. Parallel maps with
`num_parallel_calls=tf.data.AUTOTUNE` then run as many calls at once as
the machine has cores (TensorFlow's rule when autotuning is off).

The model's `fit` and `evaluate` give Keras datasets through `untuned`
(arrays in memory become such datasets, `keras_vae.data.arrays`); a
dataset whose options set `autotune.enabled` either way keeps its choice.
"""

import tensorflow as tf


def untuned(dataset):
    """`dataset` with tf.data's autotuning off, unless its options set
    `autotune.enabled` themselves (then it is returned as it is)."""
    if dataset.options().autotune.enabled is not None:
        return dataset
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)
