"""Bad files met while streaming: found, named, and skipped on request.

A file that cannot be decoded stops `tf.data` with an error that does not
name it. `reading(splits)` turns such an error into a `BadFilesError` that
names the file, by checking the files of the splits being read
(`find_bad_files`: each decoded once, in parallel, inside `tf.data`).
"""

import contextlib
import warnings

import numpy as np
import tensorflow as tf


class BadFilesError(ValueError):
    """Files of a split that cannot be read as its images."""

    def __init__(self, split_name, bad, image_shape=None):
        self.bad = bad
        listed = "\n".join(f"  {path}{_why(path, image_shape)}" for path in bad[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        super().__init__(
            f"{len(bad)} file(s) of {split_name} cannot be read as its images "
            f"(corrupt, truncated, not an image, or of another size):\n{listed}{more}\n"
            "Remove or replace them and run the command again (a training run: "
            "keras-vae train --resume RUN_DIR), or pass --skip-bad-files to skip them.")


@contextlib.contextmanager
def reading(*splits):
    """Within the block, an error of `tf.data` that a file of `splits` can
    cause becomes a `BadFilesError` naming the bad files (found by
    `find_bad_files`), when there are any. Keras's warning that a stream
    "ran out of data" is silenced: a split whose bad files are skipped has
    no known length, and Keras finds its end that way."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            yield
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError,
            tf.errors.NotFoundError, tf.errors.UnknownError):
        for split in splits:
            bad = find_bad_files(split)
            if bad:
                raise BadFilesError(split.name, bad, split.image_shape) from None
        raise


def find_bad_files(split):
    """The files of `split` that fail to decode as its images, in order
    (an empty list for a split without files, or without bad ones)."""
    if not split.files or split.check_file is None:
        return []
    checked = tf.data.Dataset.range(len(split.files)).map(
        lambda i: (i, split.check_file(i)), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=False)
    checked = checked.map(lambda i, _: i).ignore_errors()
    good = set(np.fromiter(checked.as_numpy_iterator(), dtype="int64").tolist())
    return [split.file_name(i) for i in range(len(split.files)) if i not in good]


def _why(path, image_shape):
    """What is wrong with an image file, where its header tells."""
    from PIL import Image

    if image_shape is None or not path.lower().endswith((".png", ".jpg", ".jpeg")):
        return ""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, ValueError, SyntaxError):
        return ": not a readable image"
    if (height, width) != tuple(image_shape[:2]):
        return (f": {height}x{width} pixels, the others {image_shape[0]}x{image_shape[1]} "
                "(pass --image-size HEIGHTxWIDTH to resize all of them)")
    return ": corrupt or truncated"
