"""Augmentations of the training images: new images of the same kind each
epoch, so that a model of few photos does not learn them by heart.

Named in a run's `augment` option, joined by "+" (`flip+channel_order`):

- `flip`: half the images mirrored left to right (as Keras's `RandomFlip`,
  but from a stateless seed, so that a resumed run draws what it would have).
- `channel_order`: each image's channels in a random order: a model of a few
  photos' colours then meets every ordering of them, as photos of other
  colours would need (issue 33: the held-out photos' colours are not the
  training photos').

Each batch's draws come from a stateless seed (the run's seed and the
batch's counter of `tf.data.Dataset.random`), new every epoch and the same
for the same seed. Only the training split is augmented.
"""

import tensorflow as tf

NONE = "none"


def flip(images, seed):
    """Each image of `images` (batch, H, W, C) mirrored left to right with
    probability ½."""
    mirrored = tf.random.stateless_uniform(tf.shape(images)[:1], seed) < 0.5
    return tf.where(mirrored[:, None, None, None], tf.reverse(images, axis=[2]), images)


def channel_order(images, seed):
    """Each image's channels in an order drawn uniformly from the C! orders."""
    keys = tf.random.stateless_uniform(tf.stack([tf.shape(images)[0], tf.shape(images)[3]]),
                                       seed)
    return tf.gather(images, tf.argsort(keys, axis=-1), axis=3, batch_dims=1)


#: The augmentations by name, in the order they are applied.
AUGMENTATIONS = {"flip": flip, "channel_order": channel_order}


def parse(value):
    """The augmentations that `value` ("none", or names joined by "+") names."""
    if value is None or value == NONE:
        return ()
    names = tuple(str(value).split("+"))
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown or len(set(names)) != len(names):
        raise ValueError(
            f"Invalid augment: {value!r}. Expected 'none', or names from "
            f"{list(AUGMENTATIONS)} joined by '+' (each once), e.g. 'flip+channel_order'.")
    return tuple(name for name in AUGMENTATIONS if name in names)


def check_shape(names, image_shape):
    """Refuse augmentations for examples that are not images (H, W, C)."""
    if names and len(image_shape) != 3:
        raise ValueError(
            f"augment={'+'.join(names)!r} transforms images shaped (height, width, "
            f"channels), and this data's examples have shape {tuple(image_shape)}. Use "
            "augment: none.")


def augmented(dataset, names, seed):
    """`dataset` (elements with "images", batched, in [0, 1]) with each batch
    transformed by the augmentations `names`, fresh draws every epoch."""
    if not names:
        return dataset
    counters = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)

    def transform(element, counter):
        images = element["images"]
        for i, name in enumerate(names):
            images = AUGMENTATIONS[name](images, tf.stack([counter, tf.constant(i, tf.int64)]))
        return {**element, "images": images}

    return tf.data.Dataset.zip((dataset, counters)).map(transform,
                                                         num_parallel_calls=tf.data.AUTOTUNE)
