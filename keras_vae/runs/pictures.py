"""The pictures of a run: samples, reconstructions, interpolation, latent
map and training curves, each a PNG in the run directory."""

import math

import numpy as np

from keras_vae import data, plotting
from keras_vae.runs import build, costs
from keras_vae.runs.layout import PICTURES, Run
from keras_vae.training import callbacks as callbacks_lib

_MAX_MAP_POINTS = 5000
#: The test images searched for two of different classes to interpolate between.
_INTERPOLATION_POOL = 100


class Unavailable(ValueError):
    """A picture that this run's data cannot give (an interpolation needs two
    test images): `keras-vae train` notes it and draws the others."""


def draw(run_dir, name, vae=None, config=None, splits=None, **options):
    """Write one picture of a run (one of `PICTURES`); return its path.

    `options`: `num` (samples, reconstructions), `seed` and `sampler`
    (samples: a fitted sampler's draws go to `samples_<sampler>.png`),
    `steps` (interpolation); `max_minutes` and `max_memory` (GiB), the limits
    of the picture's estimated cost (`check_cost`).
    """
    if name not in PICTURES:
        raise ValueError(f"Unknown picture: {name!r}. Expected one of {list(PICTURES)}.")
    limits = costs.Limits(options.pop("max_minutes", costs.MAX_MINUTES),
                          options.pop("max_memory", None))
    _check_options(options)
    run = Run(run_dir)
    if vae is None:
        config, vae = run.load()
    if name not in ("training_curves", "latent_map") and len(vae.data_shape) != 3:
        raise Unavailable(
            f"a table's rows are not images: the model takes rows of "
            f"{vae.data_shape[0]} columns, and {name}.png would draw them as pictures. "
            "Score rows with keras-vae detect, or decode codes with the exported model.")
    check_cost(name, vae, options, limits)
    target = run.path(name)
    if name == "training_curves":
        rows = callbacks_lib.read_history(run.path("history"))
        history = {key: [row[key] for row in rows if key in row]
                   for key in (rows[0] if rows else {})}
        return plotting.training_curves(history, target)
    if name == "samples":
        sampler = options.get("sampler")
        if sampler and sampler != "prior":
            target = run.path(f"samples_{sampler}")
        return _samples(vae, target, options.get("num", 16),
                        options.get("seed", config["seed"]), sampler)
    return _from_test_images(name, vae, splits or build.load_splits(config), target, options)


def _from_test_images(name, vae, splits, target, options):
    """Reconstructions, interpolation or the latent map of the first test
    images (at most `_MAX_MAP_POINTS`, read from the stream)."""
    count = {"reconstructions": options.get("num", 10), "interpolation": _INTERPOLATION_POOL,
             "latent_map": _MAX_MAP_POINTS}[name]
    with data.reading(splits.test):
        images, all_labels = splits.test.head(count)
    x_test = data.to_unit_interval(images).numpy()
    y_test = all_labels if vae.num_classes else None
    if name == "reconstructions":
        reconstructed = vae.reconstruct(vae.join_inputs(x_test, y_test))
        return plotting.reconstructions(x_test, reconstructed, target)
    if name == "interpolation":
        if len(x_test) < 2:
            raise Unavailable(
                f"The interpolation runs between two test images, and the test split of "
                f"{splits.test.name.rsplit(' ', 1)[0]} has {len(x_test)}. Give the source "
                "more images (its test split is a tenth of them), or an x_test of at least "
                "2 images.")
        a, b = _two_different(all_labels)
        labels = None if y_test is None else (y_test[a], y_test[b])
        steps = options.get("steps", 10)
        return plotting.interpolation(
            vae.interpolate(x_test[a], x_test[b], steps, labels=labels), target)
    codes = np.concatenate([
        np.asarray(vae.encode(vae.join_inputs(
            x_test[i:i + 1000], None if y_test is None else y_test[i:i + 1000]))[0])
        for i in range(0, len(x_test), 1000)])
    return plotting.latent_map(codes, all_labels, target)


def _check_options(options):
    for key, low in (("num", 1), ("steps", 2)):
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < low):
            raise ValueError(f"--{key} {value!r} is out of range: a picture takes an "
                             f"integer of at least {low}.")


def check_cost(name, vae, options, limits):
    """Refuse a picture whose estimated time or memory is over `limits`
    (`keras_vae.runs.costs`): its decodes at the measured speed, and its
    raster. The latent map decodes nothing."""
    num = options.get("num", 16 if name == "samples" else 10)
    steps = options.get("steps", 10)
    tiles, codes, columns, flag = {
        "samples": (num, num, math.ceil(math.sqrt(num)), f"--num {num}"),
        "reconstructions": (2 * num, num, num, f"--num {num}"),
        "interpolation": (steps, steps, steps, f"--steps {steps}"),
    }.get(name, (0, 0, 0, None))
    if not codes:
        return
    if name == "samples" and vae.num_classes:  # one row per class
        columns = max(4, num // vae.num_classes)
        tiles = codes = vae.num_classes * columns
    seconds, nbytes = costs.picture(vae, tiles, codes, columns)
    limits.check(f"{flag}: a picture of {tiles} images", seconds, nbytes,
                 fewer="for many images, use the exported model (keras-vae export)")


def _samples(vae, target, num, seed, sampler=None):
    source = "the prior" if sampler in (None, "prior") else f"the {sampler} sampler"
    if not vae.num_classes:
        return plotting.image_grid(vae.sample(num, seed=seed, sampler=sampler), target,
                                   title=f"Samples from {source}")
    classes = vae.num_classes
    per_class = max(4, num // classes)
    labels = np.repeat(np.arange(classes), per_class)
    return plotting.image_grid(
        vae.sample(len(labels), seed=seed, labels=labels, sampler=sampler), target,
        columns=per_class,
        row_labels=[str(c) for c in range(classes)],
        title="One class per row")


def _two_different(labels):
    """Indices of the first two test examples with different labels."""
    if labels is not None:
        for index in range(1, len(labels)):
            if labels[index] != labels[0]:
                return 0, index
    return 0, 1
