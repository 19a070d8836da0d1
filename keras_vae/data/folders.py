"""`images:<dir>`: a folder of PNG and JPEG files, read as a stream.

The files are listed once; each is read and decoded inside the `tf.data`
pipeline (`tf.io.decode_image`), in parallel. Labels come from first-level
subfolders (as `keras.utils.image_dataset_from_directory` gives them),
where every image has one. Every image gets one channel count: grey (1)
if the files sampled for it are grey, RGB (3) otherwise (alpha is dropped,
palettes expanded). With `image_size` every image is resized; without it,
every image must have the first file's size.

A fixed, seeded share of the *files* is held out for testing: a file's
split follows from its path and the seed alone (a hash), so adding images
to the folder never moves old images between the splits.
"""

import hashlib
import os

import tensorflow as tf

from keras_vae.data import checks
from keras_vae.data.splits import Split, Splits

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
#: Files whose headers decide between grey and RGB.
CHANNEL_SAMPLE = 32
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def load(folder, image_size=None, test_fraction=0.1, seed=0):
    """The train and test `Split`s of a folder of images."""
    if image_size and (min(image_size) < 1 or max(image_size) > checks.MAX_IMAGE_SIDE):
        raise ValueError(
            f"image_size {image_size[0]}x{image_size[1]} is out of range: each side "
            f"must be 1 to {checks.MAX_IMAGE_SIDE} pixels.")
    paths = image_paths(folder)
    class_names, labels = folder_labels(folder, paths)
    shape = image_shape(paths, image_size)
    test = held_out(folder, paths, test_fraction, seed)
    name = f"images:{folder}"
    parts = {}
    for split, in_test in (("train", False), ("test", True)):
        chosen = [(p, label) for p, label, t in zip(paths, labels, test, strict=True)
                  if t == in_test]
        parts[split] = files_split(f"{name} {split}", chosen, shape, class_names is not None,
                                   resize=image_size is not None)
    return Splits(parts["train"], parts["test"], name, class_names)


def files_split(name, files, shape, has_labels, resize):
    """A `Split` of `(path, label)` pairs, one image per file."""
    paths = [path for path, _ in files]
    place = {path: (i, label) for i, (path, label) in enumerate(files)}
    decode = _decoder(shape, has_labels, resize)

    def read(chosen, order, reshuffle):
        dataset = tf.data.Dataset.from_tensor_slices({
            "index": [place[p][0] for p in chosen],
            "path": list(chosen),
            "labels": [place[p][1] for p in chosen]})
        if order is not None:
            dataset = dataset.shuffle(len(chosen), seed=order,
                                      reshuffle_each_iteration=reshuffle)
        return dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE,
                           deterministic=order is None)

    all_paths = tf.constant(paths)

    def check_file(i):
        return decode({"index": i, "path": all_paths[i], "labels": 0})["images"]

    return Split(name, len(files), shape, has_labels, read, files=paths,
                 check_file=check_file)


def _decoder(shape, has_labels, resize):
    height, width, channels = shape

    def decode(element):
        image = tf.io.decode_image(tf.io.read_file(element["path"]), channels=channels,
                                   expand_animations=False)
        if resize:
            image = tf.image.resize(image, (height, width), antialias=True)
            image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        else:
            same = tf.reduce_all(tf.equal(tf.shape(image)[:2], [height, width]))
            with tf.control_dependencies([tf.debugging.Assert(
                    same, ["keras_vae: an image of another size:", element["path"]])]):
                image = tf.identity(image)
        result = {"index": element["index"], "images": tf.ensure_shape(image, shape)}
        if has_labels:
            result["labels"] = tf.cast(element["labels"], tf.int32)
        return result

    return decode


def image_paths(folder):
    """The image files under `folder`, sorted, or an error that says where it looked."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"No folder of images at {folder}.")
    paths = sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(folder)
        for name in names
        if name.lower().endswith(IMAGE_EXTENSIONS)
    )
    if not paths:
        raise ValueError(
            f"No images in {folder} (looked in it and its subfolders): expected files "
            f"ending in {', '.join(IMAGE_EXTENSIONS)}."
        )
    return paths


def folder_labels(folder, paths):
    """`(class_names, labels)` from first-level subfolders (as Keras does),
    if every image has one; `(None, [-1, ...])` otherwise."""
    parts = [os.path.relpath(p, folder).split(os.sep) for p in paths]
    if not all(len(p) > 1 for p in parts):
        return None, [-1] * len(paths)
    names = sorted({p[0] for p in parts})
    index = {name: i for i, name in enumerate(names)}
    return names, [index[p[0]] for p in parts]


def held_out(folder, paths, test_fraction, seed):
    """Whether each file is in the test split: a hash of its path and the
    seed under `test_fraction` (so a file's split never depends on the
    others). A folder too small for that to leave both splits some files
    gives the test split its lowest hash, the training split its highest."""
    if len(paths) < 2:
        raise ValueError(f"{folder} holds {len(paths)} image; at least 2 are needed to "
                         "keep one for testing.")
    ranks = [_rank(os.path.relpath(p, folder), seed) for p in paths]
    test = [rank < test_fraction for rank in ranks]
    if not any(test):
        test[ranks.index(min(ranks))] = True
    if all(test):
        test[ranks.index(max(ranks))] = False
    return test


def _rank(relative_path, seed):
    """A number in [0, 1) fixed by the path and the seed."""
    digest = hashlib.sha256(f"{seed}/{relative_path}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def image_shape(paths, image_size):
    """`(height, width, channels)`: the first readable file's size (or
    `image_size`), and grey or RGB from the headers of up to `CHANNEL_SAMPLE`
    files (a file whose header cannot be read is left to the stream, which
    names it, unless none can be)."""
    step = max(1, len(paths) // CHANNEL_SAMPLE)
    headers, first_error = [], None
    for path in paths[::step][:CHANNEL_SAMPLE]:
        try:
            headers.append((path, *describe(path)))
        except ValueError as error:  # a bad file: named when the stream meets it
            first_error = first_error or error
    if not headers:
        raise first_error
    grey = all(mode in _GREY_MODES for _, _, mode in headers)
    path, (width, height), _ = headers[0]
    if not image_size and max(width, height) > checks.MAX_IMAGE_SIDE:
        raise ValueError(
            f"Could not read the image {path}: it is {width}x{height} pixels; the "
            f"limit is {checks.MAX_IMAGE_SIDE} per side (pass --image-size to resize).")
    height, width = image_size or (height, width)
    return (height, width, 1 if grey else 3)


def describe(path):
    """`((width, height), mode)` from a file's header, or a ValueError naming it."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size, image.mode
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(
            f"Could not read the image {path}: {error}. Remove or replace the file."
        ) from None
