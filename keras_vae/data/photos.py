"""Natural colour photographs with no download: random square crops of the
photos that scikit-image and scikit-learn install with themselves.

The split is by photo, so the test crops come from photos the model never
saw in training:
- train: crops of scikit-image's colour photos (`skimage.data`: astronaut,
  chelsea, coffee, rocket, stereo_motorcycle, hubble_deep_field,
  immunohistochemistry, retina);
- test: crops of scikit-learn's `load_sample_images()` (china, flower).

`make_arrays` gives the crops as uint8 arrays; `write` stores them as an
`npz:` file, TFRecord shards (`tfrecord:`, through `keras_vae.runs.convert`)
or two `images:` folders of PNG files (`examples/make_photos.py`).
scikit-image is an optional dependency (the `bench` extra).
"""

import numpy as np

TRAIN_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle",
                "hubble_deep_field", "immunohistochemistry", "retina")
TEST_PHOTOS = ("china", "flower")


def train_photos():
    """{name: uint8 (height, width, 3)} of scikit-image's colour photos."""
    try:
        from skimage import data as skimage_data
    except ImportError:
        raise ImportError(
            "The photo dataset needs scikit-image for its training photos: "
            "pip install scikit-image (or pip install 'keras-vae[bench]').") from None
    photos = {}
    for name in TRAIN_PHOTOS:
        photo = getattr(skimage_data, name)()
        photos[name] = np.asarray(photo[0] if isinstance(photo, tuple) else photo, "uint8")
    return photos


def held_out_photos():
    """{name: uint8 (height, width, 3)} of scikit-learn's sample photos."""
    from sklearn.datasets import load_sample_images

    bunch = load_sample_images()
    names = [name.rsplit("/", 1)[-1].split(".")[0] for name in bunch.filenames]
    return {name: np.asarray(image, "uint8") for name, image in zip(names, bunch.images,
                                                                   strict=True)}


def crops(photos, size, count, seed):
    """`count` random `size`×`size` crops, as evenly as possible from each
    photo (in the photos' order): uint8 `(count, size, size, 3)`, the index
    of the photo of each crop, and each crop's top-left corner (row, column)."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"Invalid crop size {size!r}: expected a positive integer, e.g. 32.")
    rng = np.random.default_rng(seed)
    images = list(photos.values())
    too_small = [name for name, image in photos.items() if min(image.shape[:2]) < size]
    if too_small:
        raise ValueError(f"Crops of {size} pixels do not fit in the photos {too_small}; "
                         "use a smaller size.")
    owner = np.arange(count) % len(images)
    out = np.empty((count, size, size, 3), "uint8")
    corners = np.empty((count, 2), "int64")
    for i, index in enumerate(owner):
        image = images[index]
        corners[i] = (rng.integers(0, image.shape[0] - size + 1),
                      rng.integers(0, image.shape[1] - size + 1))
        top, left = corners[i]
        out[i] = image[top:top + size, left:left + size, :3]
    return out, owner, corners


def make_arrays(size=32, train_count=20_000, test_count=1_000, seed=0):
    """`{"x_train", "y_train", "x_test", "y_test"}`: crops of the train
    photos and of the test photos (disjoint photos); y is each crop's photo
    (its index in `TRAIN_PHOTOS` or `TEST_PHOTOS`)."""
    x_train, y_train, _ = crops(train_photos(), size, train_count, seed)
    x_test, y_test, _ = crops(held_out_photos(), size, test_count, seed + 1)
    return {"x_train": x_train, "y_train": y_train.astype("int64"),
            "x_test": x_test, "y_test": y_test.astype("int64")}
