"""Pictures of a VAE and its training, written as PNG files with matplotlib.

Every function writes its file atomically (a crash never leaves half a PNG)
and returns the path. Figures are made with matplotlib's object API
(`matplotlib.figure.Figure`), never through pyplot: the caller's backend (a
notebook's, for instance) and pyplot's list of open figures are untouched.
"""

import math
import os

import numpy as np

from keras_vae import files


def _figure(**kwargs):
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _check_images(images):
    images = np.clip(np.asarray(images, dtype="float32"), 0.0, 1.0)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            "Expected images of shape (n, height, width, 1 or 3). "
            f"Received: images.shape={images.shape}"
        )
    return images


def image_grid(images, path, columns=None, title=None, row_labels=None):
    """Write a batch of images as one PNG grid.

    Args:
        images: array `(n, height, width, channels)` with values in [0, 1];
            1 channel is drawn in grey, 3 in colour.
        path: the PNG file to write; its folder is created if needed.
        columns: images per row; defaults to a near-square grid.
        title: optional figure title.
        row_labels: optional text at the left of each row.
    """
    images = _check_images(images)
    n = len(images)
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    # One image of the whole grid (white between the tiles): one axes to lay
    # out and draw, not one per image, which took seconds for a hundred.
    mosaic, gap = _mosaic(images, rows, columns)
    height = images.shape[1]
    figure = _figure(figsize=(columns, rows + (0.4 if title else 0)))
    axis = figure.subplots()
    axis.imshow(mosaic[..., 0] if mosaic.shape[-1] == 1 else mosaic, cmap="gray",
                vmin=0.0, vmax=1.0)
    axis.set_axis_off()
    for row, label in enumerate(row_labels or []):
        axis.text(-gap, row * (height + gap) + height / 2, label, ha="right", va="center")
    if title:
        figure.suptitle(title)
    figure.tight_layout(pad=0.2)
    return _save(figure, path)


def _mosaic(images, rows, columns):
    """`(mosaic, gap)`: `images` tiled `rows` × `columns` on white, `gap`
    pixels (8% of an image's side) apart."""
    n, height, width, channels = images.shape
    gap = max(1, round(0.08 * max(height, width)))
    mosaic = np.ones((rows * (height + gap) - gap, columns * (width + gap) - gap, channels),
                     "float32")
    for index in range(n):
        top, left = (index // columns) * (height + gap), (index % columns) * (width + gap)
        mosaic[top:top + height, left:left + width] = images[index]
    return mosaic, gap


def reconstructions(originals, reconstructed, path):
    """Originals in the first row, their reconstructions below."""
    originals, reconstructed = _check_images(originals), _check_images(reconstructed)
    return image_grid(
        np.concatenate([originals, reconstructed]), path, columns=len(originals),
        title="Originals (top) and reconstructions (bottom)",
    )


def interpolation(path_images, path):
    """A strip of images decoded along a straight line in latent space."""
    return image_grid(path_images, path, columns=len(path_images),
                      title="Interpolation between two test images")


def latent_map(codes, labels, path):
    """Scatter the posterior means of a dataset in 2-D, coloured by label.

    Codes with 2 dimensions are drawn as they are (the course notes' figure);
    wider codes are projected on their first two principal components.
    """
    from matplotlib import colormaps

    codes = np.asarray(codes, dtype="float64")
    if codes.shape[1] == 2:
        points, axes_names = codes, ("z[0]", "z[1]")
    else:
        centred = codes - codes.mean(axis=0)
        _, _, components = np.linalg.svd(centred, full_matrices=False)
        points, axes_names = centred @ components[:2].T, ("PC 1", "PC 2")
    figure = _figure(figsize=(6.5, 5))
    axis = figure.subplots()
    if labels is None:
        axis.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5)
    else:
        colours = colormaps["tab10" if len(np.unique(labels)) <= 10 else "tab20"]
        for index, label in enumerate(np.unique(labels)):
            chosen = labels == label
            axis.scatter(points[chosen, 0], points[chosen, 1], s=2, alpha=0.6,
                         color=colours(index % colours.N), label=str(label))
        axis.legend(title="label", markerscale=5, loc="center left",
                    bbox_to_anchor=(1.0, 0.5), frameon=False)
    axis.set_xlabel(axes_names[0])
    axis.set_ylabel(axes_names[1])
    projection = "" if codes.shape[1] == 2 else f" (PCA of {codes.shape[1]} dims)"
    axis.set_title(f"Posterior means of the test set{projection}")
    figure.tight_layout()
    return _save(figure, path)


def score_histogram(scores, threshold, path, flagged_label="flagged"):
    """The histogram of anomaly scores, with the detector's threshold."""
    scores = np.asarray(scores, dtype="float64")
    figure = _figure(figsize=(6.5, 3.5))
    axis = figure.subplots()
    axis.hist(scores, bins=min(60, max(5, len(scores) // 5)), color="tab:blue", alpha=0.8)
    axis.axvline(threshold, color="tab:red", linestyle="--",
                 label=f"threshold {threshold:.4g}: {np.mean(scores > threshold):.1%} "
                       f"{flagged_label}")
    axis.set_xlabel("anomaly score (nats; higher: less like the training data)")
    axis.set_ylabel("examples")
    axis.legend()
    figure.tight_layout()
    return _save(figure, path)


def anomalies(originals, reconstructed, scores, path):
    """The most anomalous examples (columns): the example, its reconstruction
    and the per-pixel error |x − x̂| (mean over channels, one colour scale)."""
    from matplotlib import colormaps

    originals, reconstructed = _check_images(originals), _check_images(reconstructed)
    errors = np.abs(originals - reconstructed).mean(axis=-1)
    coloured = colormaps["magma"](errors / max(float(errors.max()), 1e-12))[..., :3]
    if originals.shape[-1] == 1:  # grey images beside the coloured error maps
        originals, reconstructed = (np.repeat(i, 3, -1) for i in (originals, reconstructed))
    rows = np.concatenate([originals, reconstructed, coloured.astype("float32")])
    title = ("Most anomalous: example, reconstruction, |error| (scores "
             + ", ".join(f"{s:.3g}" for s in scores) + ")")
    return image_grid(rows, path, columns=len(originals), title=title,
                      row_labels=["x", "x\u0302", "|x - x\u0302|"])


def training_curves(history, path):
    """Loss, reconstruction and KL per epoch, training and validation."""
    keys = ("loss", "reconstruction_loss", "kl_loss")
    figure = _figure(figsize=(12, 3.5))
    axes = figure.subplots(1, 3)
    for axis, key in zip(axes, keys, strict=True):
        for prefix, style in (("", "-o"), ("val_", "--o")):
            values = history.get(prefix + key)
            if values:
                epochs = np.arange(1, len(values) + 1)
                axis.plot(epochs, values, style, label=prefix + key, markersize=3)
        axis.set_xlabel("epoch")
        axis.set_ylabel("nats per example")
        axis.set_title(key)
        axis.legend()
    figure.tight_layout()
    return _save(figure, path)


def _save(figure, path):
    # Write beside the target, then rename: a crash never leaves half a PNG.
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with files.replacing(path) as temporary:
        figure.savefig(temporary, dpi=80)
    return str(path)
