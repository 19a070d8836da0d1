"""A few user journeys through run directories and the command line's jobs.

Each journey goes the way a user goes, once: a run directory from a config
(`fit`, `.keras` saving, TensorBoard, pictures, backups), `keras-vae
evaluate`, `keras-vae fit-sampler` where the journey has a sampler,
`predict`, load the `.keras` file and compare `decode`/`sample`/
`reconstruct`/`encode`, SavedModel and LiteRT export with parity. The
combination matrix's cells test every pair of options in-process
(`tests/test_matrix_model.py`, `tests/test_matrix_export.py`); these three
check what only a run directory shows: a plain model (on an npz), a
conditional model with a fitted sampler (on TFRecord shards), and a
hierarchy trained with MIWAE, whose groups are given as a config key
(`importance_groups`), on a folder of PNG files: each kind of source
through every job.
"""

import math
import os

import keras
import matplotlib.image
import numpy as np
import pytest
import tensorflow as tf
from cells import config_of

from keras_vae import compatibility, edge, runs

IMAGE = (8, 8)
LATENT = 2
CLASSES = 3


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """A tiny labelled 8-bit dataset (blobs whose place is the label) as each
    kind of source: an npz, TFRecord shards (`keras-vae convert`) and a
    folder of PNG files in class subfolders."""
    from PIL import Image

    rng = np.random.default_rng(0)

    def images(n):
        labels = rng.integers(0, CLASSES, n)
        x = rng.integers(0, 60, (n,) + IMAGE)
        for i, label in enumerate(labels):
            x[i, 2 * label: 2 * label + 3, 1:7] += 180
        return x.astype("uint8"), labels.astype("int64")

    (x_train, y_train), (x_test, y_test) = images(64), images(32)
    root = tmp_path_factory.mktemp("data")
    np.savez(root / "blobs.npz", x_train=x_train, y_train=y_train, x_test=x_test,
             y_test=y_test)
    runs.convert(f"npz:{root / 'blobs.npz'}", str(root / "shards"), shard_size=20,
                 verbose=False)
    for i, (image, label) in enumerate(zip(np.concatenate([x_train, x_test]),
                                           np.concatenate([y_train, y_test]), strict=True)):
        (root / "images" / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "images" / str(label) / f"{i:03d}.png")
    return {"npz": f"npz:{root / 'blobs.npz'}", "tfrecord": f"tfrecord:{root / 'shards'}",
            "images": f"images:{root / 'images'}"}


class _Keep(keras.callbacks.Callback):
    """Keeps the trained model of a run, to compare with what was saved."""

    def on_train_end(self, logs=None):
        self.trained = self.model


def run_cell(levels, dataset, tmp_path, **data_options):
    config = {**config_of(levels, dataset), **data_options}
    run_dir = str(tmp_path / "run")
    keep = _Keep()
    written = runs.train(config, run_dir, verbose=0, callbacks=[keep])
    assert all(os.path.exists(p) for p in written)
    # The run directory: its config, history, model, TensorBoard logs, and
    # pictures that show something (not one flat colour).
    names = set(os.listdir(run_dir))
    assert {"config.json", "history.csv", "model.keras", "tensorboard"} <= names, names
    pictures = [p for p in written if p.endswith(".png")]
    assert len(pictures) >= 4, written
    for picture in pictures:
        assert matplotlib.image.imread(picture).std() > 0.01, picture
    vae = keep.trained
    conditional = levels["conditional"] == "yes"
    assert vae.num_classes == (
        CLASSES if conditional else None)

    # fit's history and keras-vae evaluate: finite, and the numbers add up.
    scores = runs.evaluate(run_dir, verbose=0, iw_samples=2, iw_precision=levels["precision"])
    assert scores["iw_precision"] == levels["precision"]
    for key in ("negative_elbo", "reconstruction_loss", "kl_loss", "training_objective",
                "negative_log_likelihood"):
        assert math.isfinite(scores[key]), (key, scores)
    assert scores["negative_elbo"] == pytest.approx(
        scores["reconstruction_loss"] + scores["kl_loss"], rel=1e-6)

    # A sampler fitted after training, kept in model.keras.
    sampler = None
    if levels["sampler"] == "gmm":
        sampler = "gmm"
        written = runs.fit_sampler(run_dir, "gmm", components=2)
        assert all(os.path.exists(p) for p in written)
        vae.add_sampler("gmm", runs.load_vae_file(written[0]).samplers["gmm"])

    # predict, decode, sample, reconstruct, encode: shapes, ranges, finite.
    splits = runs.load_splits(config)
    # The first 5 test images as the model sees them (binarized as configured).
    first = runs.build.dataset(config, vae, splits.test.take(5), training=False)
    inputs = next(iter(first))
    x = np.asarray(inputs["images"] if conditional else inputs)
    labels = splits.test.head(5)[1].astype("int32")
    inputs = runs.inputs(vae, x, labels)
    predicted = vae.predict(inputs, verbose=0)
    assert predicted.shape == (5,) + IMAGE + (1,) and np.all(np.isfinite(predicted))
    z = np.random.default_rng(0).standard_normal((5, vae.latent_dim)).astype("float32")
    extra = {"labels": labels} if conditional else {}
    outputs = {
        "decode": lambda m: m.decode(z, **extra),
        "sample": lambda m: m.sample(5, seed=3, sampler=sampler, **extra),
        "reconstruct": lambda m: m.reconstruct(inputs),
        "encode": lambda m: m.encode(inputs)[0],
    }
    before = {name: np.asarray(f(vae)) for name, f in outputs.items()}
    for name, value in before.items():
        assert np.all(np.isfinite(value)), name

    # The .keras file gives the same model back.
    loaded = runs.load_vae_file(os.path.join(run_dir, "model.keras"))
    assert type(loaded) is type(vae)
    for name, f in outputs.items():
        np.testing.assert_allclose(np.asarray(f(loaded)), before[name], rtol=1e-5,
                                   atol=1e-6, err_msg=name)

    # SavedModel and LiteRT (builtin ops only), with parity.
    out = str(tmp_path / "export")
    # One fixed batch size: the cells test the options, test_export the sizes.
    paths = runs.export_model(run_dir, out, quantize=("none",), batch_sizes=(4,))
    decode = tf.saved_model.load(paths[0]).signatures["decode"]
    served = decode(z=tf.constant(z), **({"labels": tf.constant(labels)} if conditional
                                          else {}))
    np.testing.assert_allclose(np.asarray(next(iter(served.values()))), before["decode"],
                               rtol=1e-5, atol=1e-5)
    generator = edge.LiteRTGenerator(paths[1])
    got = generator.decode(z, labels=labels if conditional else None)
    np.testing.assert_allclose(got, before["decode"], rtol=1e-5, atol=1e-5)
    drawn = generator.sample(4, labels=labels[:4] if conditional else None, sampler=sampler)
    assert drawn.shape == (4,) + IMAGE + (1,) and np.all(np.isfinite(drawn))
    keras.backend.clear_session()


_DEFAULTS = {"likelihood": "bernoulli", "prior": "standard_normal", "posterior": "diagonal",
             "objective": "elbo", "network": "mlp", "conditional": "no", "num_samples": "1",
             "use_exact_kl": "True", "sampler": "prior", "hierarchy": "none",
             "precision": "float32", "score": "elbo", "input": "image"}
JOURNEYS = {
    "plain": {},
    "conditional_with_a_sampler": {
        "likelihood": "gaussian", "prior": "mixture_of_gaussians", "network": "conv",
        "conditional": "yes", "sampler": "gmm", "objective": "elbo"},
    "hierarchy": {"hierarchy": "ladder", "prior": None, "posterior": None,
                  "objective": "miwae(groups>1)", "num_samples": "> 1",
                  "likelihood": "discretized_logistic"},
}


def test_the_journeys_defaults_name_every_option():
    assert set(_DEFAULTS) == set(compatibility.LEVELS)
    for journey in JOURNEYS.values():
        assert compatibility.supported({**_DEFAULTS, **journey})


#: Each journey's source, with the streaming options that apply to it.
SOURCES = {"plain": ("npz", {}),
           "conditional_with_a_sampler": ("tfrecord", {"shuffle_buffer": 16}),
           "hierarchy": ("images", {"skip_bad_files": True})}


# The plain journey runs in `make test`; the two longer ones (15 s each) in
# `make test-long`, which CI runs after it.
@pytest.mark.parametrize("name", [
    pytest.param(name, marks=[pytest.mark.long] if name != "plain" else [])
    for name in JOURNEYS])
def test_journey(name, datasets, tmp_path):
    source, options = SOURCES[name]
    run_cell({**_DEFAULTS, **JOURNEYS[name]}, datasets[source], tmp_path, **options)
    if options.get("skip_bad_files"):  # none here: the list says so
        skipped = (tmp_path / "run" / "skipped_files.txt").read_text()
        assert skipped == "# 0 file(s) could not be decoded and were skipped\n"
