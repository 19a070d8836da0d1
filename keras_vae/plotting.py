"""Pictures of a VAE's outputs, written as PNG files with matplotlib."""

import math
import os

import numpy as np


def image_grid(images, path, columns=None, title=None):
    """Write a batch of images as one PNG grid and return the path.

    Args:
        images: array `(n, height, width, channels)` with values in [0, 1];
            1 channel is drawn in grey, 3 in colour.
        path: the PNG file to write; its folder is created if needed.
        columns: images per row; defaults to a near-square grid.
        title: optional figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = np.clip(np.asarray(images, dtype="float32"), 0.0, 1.0)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            "Expected images of shape (n, height, width, 1 or 3). "
            f"Received: images.shape={images.shape}"
        )
    n = len(images)
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(columns, rows + (0.4 if title else 0)), squeeze=False
    )
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < n:
            image = images[index]
            axis.imshow(image[..., 0] if image.shape[-1] == 1 else image,
                        cmap="gray", vmin=0.0, vmax=1.0)
    if title:
        figure.suptitle(title)
    figure.tight_layout(pad=0.2)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    _save_atomically(figure, path)
    plt.close(figure)
    return path


def _save_atomically(figure, path):
    # Write beside the target, then rename: a crash never leaves half a PNG.
    temporary = f"{path}.partial.png"
    figure.savefig(temporary, dpi=80)
    os.replace(temporary, path)
