"""`tfrecord:<dir>`: a folder of TFRecord shards, read as a stream.

The layout (written by `keras-vae convert`, or by any program):

    <dir>/dataset.json          {"format": "keras_vae.tfrecord", "version": 1,
                                 "image_shape": [height, width, channels],
                                 "counts": {"train": N, "test": M},
                                 "class_names": ["cat", "dog"] or null,
                                 "shard_counts": {"train-00000.tfrecord": 10000,
                                                  ...}, optional}
    <dir>/train-00000.tfrecord  tf.train.Example records, each with the features
    <dir>/train-00001.tfrecord    "image": bytes, the encoded image (PNG or JPEG)
    ...                           "label": int64, optional (0, 1, ...)
    <dir>/test-00000.tfrecord

Shards are read in parallel (`interleave`), shuffled at the file level for
training, and split by file across the workers of a cluster.
"""

import glob
import json
import os

import tensorflow as tf

from keras_vae.data.splits import Split, Splits

FORMAT = "keras_vae.tfrecord"
METADATA = "dataset.json"
FEATURES = {"image": "bytes: the encoded image (PNG or JPEG)",
            "label": "int64: the class, optional"}
#: Shards read at once.
CYCLE_LENGTH = 4


def shard_paths(folder, split):
    return sorted(glob.glob(os.path.join(folder, f"{split}-*.tfrecord")))


def load(folder):
    """The train and test `Split`s of a folder of shards."""
    metadata = read_metadata(folder)
    shape = tuple(metadata["image_shape"])
    class_names = metadata.get("class_names")
    parts = {}
    for split in ("train", "test"):
        paths = shard_paths(folder, split)
        if not paths:
            raise ValueError(
                f"No {split} shards in {folder}: looked for {split}-*.tfrecord there. "
                "Write the folder with keras-vae convert SOURCE OUT_DIR.")
        has_labels = check_features(paths[0])
        parts[split] = records_split(f"tfrecord:{folder} {split}", paths,
                                     int(metadata["counts"][split]), shape, has_labels,
                                     _counts(paths, metadata.get("shard_counts")))
    if class_names is not None and not (parts["train"].has_labels and parts["test"].has_labels):
        class_names = None
    return Splits(parts["train"], parts["test"], f"tfrecord:{folder}", class_names)


def read_metadata(folder):
    path = os.path.join(folder, METADATA)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"No folder of TFRecord shards at {folder}.")
    if not os.path.isfile(path):
        raise ValueError(
            f"No {METADATA} in {folder}: a tfrecord: folder needs it beside its shards "
            "(image_shape, counts, class_names). keras-vae convert writes it.")
    try:
        with open(path) as f:
            metadata = json.load(f)
        shape = metadata["image_shape"]
        counts = {split: int(metadata["counts"][split]) for split in ("train", "test")}
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"{path} is not a keras_vae dataset description ({error!r}): it needs "
            '"image_shape": [height, width, channels] and "counts": {"train": N, '
            '"test": M}.') from None
    if len(shape) != 3 or shape[2] not in (1, 3) or min(counts.values()) < 1:
        raise ValueError(f"{path}: image_shape {shape} must be [height, width, 1 or 3] "
                         f"and each count at least 1 (received {counts}).")
    return metadata


def check_features(path):
    """Whether the shard's records have labels; a ValueError that lists the
    features they have when they do not follow the layout."""
    for record in tf.data.TFRecordDataset(path).take(1):
        try:
            features = tf.train.Example.FromString(record.numpy()).features.feature
        except Exception as error:  # protobuf's DecodeError
            raise ValueError(f"{path} does not hold tf.train.Example records: {error}") \
                from None
        kinds = {name: feature.WhichOneof("kind") for name, feature in features.items()}
        if kinds.get("image") != "bytes_list" or kinds.get("label", "int64_list") != \
                "int64_list":
            have = ", ".join(f"{name} ({kind})" for name, kind in sorted(kinds.items()))
            expected = ", ".join(f"{name} ({kind})" for name, kind in FEATURES.items())
            raise ValueError(
                f"The records of {path} have the features {have}; expected {expected}. "
                "Rename the features when writing, or write the shards with keras-vae "
                "convert.")
        return "label" in kinds
    raise ValueError(f"{path} holds no records.")


def _counts(paths, shard_counts):
    """Each shard's count, where `dataset.json` gives every one (`keras-vae
    convert` does), else None."""
    names = [os.path.basename(p) for p in paths]
    if not shard_counts or any(name not in shard_counts for name in names):
        return None
    return [int(shard_counts[name]) for name in names]


def _offsets(counts, shards):
    """Each shard's first example's place in the split; without the counts,
    the shard's number times 2**32."""
    if counts is None:
        return [i * 2**32 for i in range(shards)]
    return [sum(counts[:i]) for i in range(len(counts))]


def records_split(name, paths, count, shape, has_labels, counts=None):
    """A `Split` of TFRecord shards of `counts` examples each (or None when
    unknown); example `i` of shard `k` has the index `offsets[k] + i` (for
    `keras-vae convert`'s shards, its place in the source's split: the same
    static binarization as the source)."""
    parse = _parser(shape, has_labels)
    offsets = _offsets(counts, len(paths))

    def read(chosen, order, reshuffle):
        files = tf.data.Dataset.from_tensor_slices(
            {"offset": tf.constant([offsets[paths.index(p)] for p in chosen], tf.int64),
             "path": list(chosen)})
        if order is not None:
            files = files.shuffle(len(chosen), seed=order, reshuffle_each_iteration=reshuffle)

        def records(shard):
            return tf.data.TFRecordDataset(shard["path"]).enumerate().map(
                lambda i, record: (shard["offset"] + i, record))

        if order is None:  # the shards one after the other: the split's own order
            examples = files.flat_map(records)
        else:
            examples = files.interleave(
                records, cycle_length=min(CYCLE_LENGTH, len(chosen)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        return examples.map(parse, num_parallel_calls=tf.data.AUTOTUNE,
                            deterministic=order is None)

    all_paths = tf.constant(paths)

    def check_file(i):
        return tf.data.TFRecordDataset(all_paths[i]).map(
            lambda record: parse(tf.constant(0, tf.int64), record)["images"]).reduce(
            tf.constant(0, tf.int64), lambda total, image: total + 1)

    return Split(name, count, shape, has_labels, read, files=paths, check_file=check_file,
                 examples_shuffled=False, file_counts=counts)


def _parser(shape, has_labels):
    spec = {"image": tf.io.FixedLenFeature([], tf.string)}
    if has_labels:
        spec["label"] = tf.io.FixedLenFeature([], tf.int64)

    def parse(index, record):
        example = tf.io.parse_single_example(record, spec)
        image = tf.io.decode_image(example["image"], channels=shape[2],
                                   expand_animations=False)
        result = {"index": index, "images": tf.ensure_shape(image, shape)}
        if has_labels:
            result["labels"] = tf.cast(example["label"], tf.int32)
        return result

    return parse


def write_shard(path, examples):
    """Write `(encoded image bytes, label or None)` pairs to `path`,
    atomically (a temporary name, renamed when complete)."""
    partial = path + ".partial"
    try:
        with tf.io.TFRecordWriter(partial) as writer:
            for image, label in examples:
                feature = {"image": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[image]))}
                if label is not None:
                    feature["label"] = tf.train.Feature(
                        int64_list=tf.train.Int64List(value=[int(label)]))
                writer.write(tf.train.Example(
                    features=tf.train.Features(feature=feature)).SerializeToString())
    except BaseException:  # a full disk, a stop: no partial shard is left
        if os.path.exists(partial):
            os.remove(partial)
        raise
    os.replace(partial, path)
