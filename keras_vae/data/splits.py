"""Splits that stream: a source's train and test images as `tf.data`, never
whole in memory.

A `Split` knows what can be known without reading it (its count, image
shape, whether it has labels, its files) and makes the `tf.data.Dataset`
of its examples on demand. Each element is a dict: `"index"` (int64, the
example's fixed place in the split, which seeds its static binarization),
`"images"` (`(height, width, channels)`, uint8, or float32 in [0, 1] for
float arrays) and, where the source has labels, `"labels"` (int32).
Scaling, binarization, shuffling and batching are
`keras_vae.data.pipeline`'s.

File sources (`images:`, `tfrecord:`) are sharded by file across the
workers of a `tf.distribute` strategy; with fewer files than workers, and
for the other sources, by example.
"""

import dataclasses

import numpy as np
import tensorflow as tf


class Split:
    """One split of a source.

    Args:
        name: e.g. `"images:/data/faces train"`, for messages.
        count: the number of examples.
        image_shape: `(height, width, channels)`.
        has_labels: whether elements have `"labels"`.
        read: `read(files, order, reshuffle)` → the unbatched dataset of the
            examples of `files` (a list, or None for a source without
            files), in their order or, with an `order` seed, shuffled (afresh
            each pass if `reshuffle`).
        files: the split's files (paths), or None.
        check_file: `check_file(i)` → a tensor whose computation fails if
            file `i` cannot be read as the split's images
            (`keras_vae.data.errors.find_bad_files`).
        examples_shuffled: whether `order` shuffles every example (arrays,
            one image per file) rather than only the files (shards).
        file_counts: the examples in each file, where a source of several
            examples per file knows them (TFRecord shards with their counts
            in dataset.json): a cluster can then shard it by file.
    """

    def __init__(self, name, count, image_shape, has_labels, read, files=None,
                 check_file=None, examples_shuffled=True, file_counts=None):
        self.name, self.count = name, int(count)
        self.image_shape, self.has_labels = tuple(int(d) for d in image_shape), has_labels
        self._read, self.files = read, None if files is None else list(files)
        self.check_file = check_file
        # Examples per file: one per image file; known per shard where
        # dataset.json gives them (else None, and a cluster shards by example).
        self.file_counts = ([1] * len(self.files) if self.files and examples_shuffled
                            else file_counts)
        self.examples_shuffled = examples_shuffled
        self._limit = None

    def dataset(self, shard=(1, 0), order=None, counted=True, reshuffle=True):
        """The examples of worker `shard[1]` of `shard[0]`; shuffled with an
        `order` seed, afresh each pass if `reshuffle` (else once: for a
        cache of the first pass). `counted`: the dataset states its
        length (unsharded; not where bad files are to be skipped, as a
        short split would then fail at its end)."""
        workers, worker = shard
        files = self.files
        by_file = self._by_file(workers)
        if by_file:
            files = files[worker::workers]
        dataset = self._read(files, order, reshuffle)
        if self._limit is not None:
            dataset = dataset.take(self._limit)
        if workers > 1 and not by_file:
            dataset = dataset.shard(workers, worker)
        if counted and workers == 1:  # Keras knows an epoch's length from the first one
            dataset = dataset.apply(tf.data.experimental.assert_cardinality(self.count))
        return dataset

    def _by_file(self, workers):
        return (self.files is not None and self.file_counts is not None
                and self._limit is None and 1 < workers <= len(self.files))

    def shard_files(self, workers, worker):
        """The files that worker `worker` of `workers` reads: its share where
        the split is sharded by file, else all of them."""
        return self.files[worker::workers] if self._by_file(workers) else list(self.files)

    def shard_count(self, workers, worker):
        """The examples that worker `worker` of `workers` reads (`dataset`)."""
        if self._by_file(workers):
            return sum(self.file_counts[worker::workers])
        return self.count // workers + (1 if worker < self.count % workers else 0)

    def take(self, n):
        """The first `n` examples of the split (one image per file: the
        first `n` files)."""
        if n is None or n >= self.count:
            return self
        limited = Split(self.name, n, self.image_shape, self.has_labels, self._read,
                        self.files, self.check_file, self.examples_shuffled,
                        self.file_counts)
        if self.files is not None and self.examples_shuffled:
            limited.files, limited.file_counts = self.files[:n], self.file_counts[:n]
        else:
            limited._limit = n
        return limited

    def file_name(self, i):
        return self.files[i]

    def head(self, n):
        """`(images, labels)`: the first `n` examples as arrays (labels None
        without them), for pictures and previews."""
        return _arrays(self, self.dataset().take(n))

    def arrays(self):
        """`(images, labels)` of the whole split, in memory: for data that fits."""
        return _arrays(self, self.dataset())

    def __repr__(self):
        return f"Split({self.name!r}, count={self.count}, image_shape={self.image_shape})"


def _arrays(split, dataset):
    from keras_vae.data import errors

    images, labels = [], []
    with errors.reading(split):
        for batch in dataset.batch(4096).as_numpy_iterator():
            images.append(batch["images"])
            if split.has_labels:
                labels.append(batch["labels"])
    images = np.concatenate(images) if images else np.zeros((0,) + split.image_shape, "uint8")
    return images, (np.concatenate(labels) if split.has_labels and labels else None)


def array_split(name, images, labels=None):
    """A split of arrays held in memory: `(n, height, width, channels)`
    uint8 (or floats in [0, 1]), and optional labels `(n,)`."""
    images = np.asarray(images)
    elements = {"index": np.arange(len(images), dtype="int64"), "images": images}
    if labels is not None:
        elements["labels"] = np.asarray(labels, "int32")

    def read(files, order, reshuffle):
        if order is None:
            return tf.data.Dataset.from_tensor_slices(elements)
        # A full shuffle of the indices (8 bytes each), the images gathered after.
        tensors = {key: tf.constant(value) for key, value in elements.items()}
        return tf.data.Dataset.range(len(images)).shuffle(
            max(1, len(images)), seed=order, reshuffle_each_iteration=reshuffle).map(
            lambda i: {key: tf.gather(value, i) for key, value in tensors.items()},
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    return Split(name, len(images), images.shape[1:], labels is not None, read)


@dataclasses.dataclass
class Splits:
    """A source's train and test splits, and its class names (None without
    labels). `x_train`, `y_train`, `x_test` and `y_test` read a whole split
    into memory: for data that fits (the jobs stream instead)."""

    train: Split
    test: Split
    name: str
    class_names: list | None = None
    #: A table's column names (`keras_vae.data.tables`); None for images.
    columns: list | None = None

    @property
    def image_shape(self):
        return self.train.image_shape

    @property
    def num_classes(self):
        return None if self.class_names is None else len(self.class_names)

    def _part(self, split, which):
        # Read once per split object (a split replaced by `take` is read anew).
        cache = self.__dict__.setdefault("_arrays", {})
        if cache.get(id(split), (None,))[0] is not split:
            cache[id(split)] = (split, split.arrays())
        return cache[id(split)][1][which]

    x_train = property(lambda self: self._part(self.train, 0))
    y_train = property(lambda self: self._part(self.train, 1))
    x_test = property(lambda self: self._part(self.test, 0))
    y_test = property(lambda self: self._part(self.test, 1))
