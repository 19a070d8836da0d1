"""A model's inputs in batches, and the codes of a data set.

Inputs are arrays held in memory (the model says how they split into images
and labels) or a batched `tf.data.Dataset` of the model's inputs, which is
read a batch at a time (`keras_vae.data.stream` makes one from any source).
"""

import numpy as np
import tensorflow as tf

from keras_vae.data.untuned import untuned


def length(vae, inputs):
    """The number of examples in the model's `inputs`: in memory, or a batch
    of a dataset."""
    return len(vae.input_arrays(inputs)[0])


def batches(vae, inputs, batch_size):
    """The model's inputs, `batch_size` examples at a time (a dataset's own
    batches, read with tf.data's autotuning off: `keras_vae.data.untuned`)."""
    if isinstance(inputs, tf.data.Dataset):
        yield from untuned(inputs)
        return
    images, labels = vae.input_arrays(inputs)
    for start in range(0, len(images), batch_size):
        end = start + batch_size
        yield vae.join_inputs(np.asarray(images[start:end], dtype="float32"),
                              None if labels is None else labels[start:end])


def posterior_means(vae, x, batch_size=1000):  # pragma: no mutate (batching)
    """`encode`'s loc for each example: E_q[z|x] for a Gaussian posterior,
    z at ε = 0 for a flow or a hierarchy (`Posterior.loc_is_mean`)."""
    return np.concatenate([np.asarray(vae.encode(b)[0]) for b in batches(vae, x, batch_size)])
