"""Datasets without tf.data's autotuning thread, which can hold up an epoch's end.

With autotuning on (tf.data's default), each iterator has a thread that
tunes the pipeline at growing intervals: periods that double from 10 ms up
to 60 s (`kOptimizationPeriodMinMs` and `kOptimizationPeriodMaxMs` in
TensorFlow's tensorflow/core/framework/model.h). In TensorFlow 2.21 an
iterator that is deleted while that thread waits is not freed until the
thread's next tuning time: the deleting thread blocks, on an idle CPU, for
up to one period. Keras makes a new iterator every epoch (and every
`evaluate`): measured, the photo model's epochs of 6.9 s each ended with a
wait of about 3.4 s (`benchmarks/iterator_benchmark.py`); an epoch of
minutes can wait up to a minute.

With autotuning off there is no such thread. Parallel maps with
`num_parallel_calls=tf.data.AUTOTUNE` then run at TensorFlow's default
parallelism (a throwaway check on 2 cores: the throughput of two parallel
calls, the same as with autotuning).

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
