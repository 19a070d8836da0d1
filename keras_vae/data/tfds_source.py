"""`tfds:<name>`: a TensorFlow Datasets split, read as the `tf.data.Dataset`
that TFDS returns (never converted to NumPy).

Its `image` feature is the image and `label`, where present, the class.
A dataset without a test split keeps the last `test_fraction` of its train
split for testing (TFDS slicing: fixed, whatever the order of reading).
Under a cluster each worker reads every `num_workers`-th example.
"""

import tensorflow as tf

from keras_vae.data.splits import Split, Splits


def load(name, data_dir=None, test_fraction=0.1):
    """The train and test `Split`s of a prepared TFDS dataset."""
    _, info = _load(name, "train", data_dir)
    features = info.features
    if "image" not in features:
        raise ValueError(
            f"The TFDS dataset {name!r} has no 'image' feature (it has "
            f"{sorted(features)}): keras_vae needs images.")
    shape = tuple(features["image"].shape)
    if None in shape:
        raise ValueError(
            f"The TFDS dataset {name!r} has images of varying size {shape}; keras_vae "
            "needs one size. Convert it with keras-vae convert and --image-size.")
    has_labels = "label" in features
    class_names = list(features["label"].names) if has_labels else None
    try:
        parts = {"train": ("train", _count(name, "train", data_dir)),
                 "test": ("test", _count(name, "test", data_dir))}
    except ValueError:  # no test split
        total = _count(name, "train", data_dir)
        cut = total - max(1, int(round(total * test_fraction)))
        parts = {"train": (f"train[:{cut}]", cut), "test": (f"train[{cut}:]", total - cut)}
    made = {key: tfds_split(name, data_dir, f"tfds:{name} {key}", split, count, shape,
                            has_labels)
            for key, (split, count) in parts.items()}
    return Splits(made["train"], made["test"], f"tfds:{name}", class_names)


def _load(name, split, data_dir, **options):
    import tensorflow_datasets as tfds

    try:
        return tfds.load(name, split=split, data_dir=data_dir, download=False,
                         with_info=True, **options)
    except Exception as error:  # TFDS raises several types for missing data.
        raise ValueError(
            f"Could not load the {split!r} split of the TFDS dataset {name!r} "
            f"from {data_dir or '~/tensorflow_datasets'}: {error}\nThis machine "
            "may be offline: prepare the data where there is network (`tfds "
            f"build {name}`) and pass its folder as data_dir (--data-dir)."
        ) from None


def _count(name, split, data_dir):
    """The examples of a split: from the metadata, or counted from TFDS's dataset."""
    dataset, info = _load(name, split, data_dir)
    if info.splits and split in info.splits and info.splits[split].num_examples:
        return info.splits[split].num_examples
    known = int(dataset.cardinality())
    return known if known >= 0 else int(dataset.reduce(0, lambda n, _: n + 1))


def tfds_split(name, data_dir, split_name, split, count, shape, has_labels):
    import tensorflow_datasets as tfds

    def read(files, order, reshuffle):
        dataset, _ = _load(name, split, data_dir, shuffle_files=order is not None,
                           read_config=tfds.ReadConfig(shuffle_seed=order))

        def element(index, example):
            image = example["image"]
            image = image[..., None] if len(image.shape) == 2 else image
            result = {"index": index, "images": tf.ensure_shape(image, shape)}
            if has_labels:
                result["labels"] = tf.cast(example["label"], tf.int32)
            return result

        return dataset.enumerate().map(element, num_parallel_calls=tf.data.AUTOTUNE)

    return Split(split_name, count, shape, has_labels, read, examples_shuffled=False)
