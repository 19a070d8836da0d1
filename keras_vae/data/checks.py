"""Checks of loaded images and labels, before anything is built from them.

Every source's arrays pass through `check_splits`, so that bad data gets one
message naming the source, the array and the fix, instead of an error from
inside a tf.data function or the model.
"""

import numpy as np

#: The largest image side accepted, in pixels (a VAE's dense layers on a
#: 4096 × 4096 image already take gigabytes).
MAX_IMAGE_SIDE = 4096


def check_splits(splits):
    """Raise a ValueError unless `splits` holds usable images and labels."""
    for part in ("x_train", "x_test"):
        check_images(getattr(splits, part), f"{splits.name} {part}")
    if splits.x_train.shape[1:] != splits.x_test.shape[1:]:
        raise ValueError(
            f"{splits.name}: x_train has images of shape {splits.x_train.shape[1:]} "
            f"but x_test {splits.x_test.shape[1:]}. Both splits must have one shape."
        )
    for part, images in (("y_train", splits.x_train), ("y_test", splits.x_test)):
        labels = getattr(splits, part)
        if labels is not None:
            check_labels(labels, len(images), f"{splits.name} {part}")
    return splits


def check_images(x, name):
    """`x` must be a non-empty `(n, height, width[, channels])` numeric array
    of finite values, uint8-like in 0–255 or floats in [0, 1]."""
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
            or x.dtype == bool):
        raise ValueError(
            f"{name} has dtype {x.dtype}; expected numbers (uint8 0–255 or floats in "
            "[0, 1]). Convert the array before saving it."
        )
    if x.ndim == 2:
        raise ValueError(
            f"{name} has shape {x.shape}: flat vectors, not images. Reshape it to "
            "(n, height, width) or (n, height, width, channels), e.g. "
            "x.reshape(-1, 28, 28) for MNIST."
        )
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 3, 4)):
        raise ValueError(
            f"{name} has shape {x.shape}; expected (n, height, width) or (n, height, "
            "width, channels) with 1, 3 or 4 channels."
        )
    if len(x) == 0:
        raise ValueError(f"{name} is empty: it holds no images.")
    if min(x.shape[1:3]) < 1:
        raise ValueError(f"{name} has images of {x.shape[1]}x{x.shape[2]} pixels; expected "
                         "at least 1 pixel a side.")
    if max(x.shape[1:3]) > MAX_IMAGE_SIDE:
        raise ValueError(
            f"{name} has images of {x.shape[1]}x{x.shape[2]} pixels; the limit is "
            f"{MAX_IMAGE_SIDE} per side. Resize them (images: sources take "
            "--image-size HEIGHTxWIDTH)."
        )
    _check_values(x, name)


def _check_values(x, name):
    if np.issubdtype(x.dtype, np.floating):
        finite = np.isfinite(x)
        if not finite.all():
            raise ValueError(
                f"{name} holds {x.size - int(finite.sum())} NaN or infinite values. "
                "Remove or replace them."
            )
        low, high = float(x.min()), float(x.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"{name} holds floats from {low:g} to {high:g}; expected floats in "
                "[0, 1] or integers 0–255. Divide 8-bit images by 255 (or save them "
                "as uint8)."
            )
    elif x.dtype != bool and (int(x.min()) < 0 or int(x.max()) > 255):
        raise ValueError(
            f"{name} holds integers from {int(x.min())} to {int(x.max())}; expected "
            "8-bit levels 0–255."
        )


def check_labels(y, count, name):
    """`y` must be `count` non-negative integer labels."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != count:
        raise ValueError(
            f"{name} has shape {y.shape}; expected one label per image: ({count},)."
        )
    if count and not np.issubdtype(y.dtype, np.integer):
        numeric = np.issubdtype(y.dtype, np.number) or y.dtype == bool
        values = (f"values from {y.min()} to {y.max()}" if numeric
                  else f"values such as {y[0].item()!r}")  # strings, objects: no min()
        raise ValueError(
            f"{name} must hold integer labels 0, 1, 2, …; received dtype {y.dtype} with "
            f"{values}. Map class names to integers first (e.g. np.unique(y, "
            "return_inverse=True)[1]).")
    if count and int(y.min()) < 0:
        raise ValueError(f"{name} must hold integer labels 0, 1, 2, …; received values "
                         f"from {y.min()} to {y.max()}.")
