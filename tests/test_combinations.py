"""The combination matrix: every documented option with every other.

The cells come from `keras_vae.compatibility`, the rules the model itself
applies. The default suite runs an all-pairs selection (every level of every
option meets every level of every other at least once); `make test-all`
runs the full product of supported levels (the `slow` marker). Each cell
goes the way a user goes: a run directory from a config (`fit`, `.keras`
saving, pictures), `keras-vae evaluate`, `predict`, load the `.keras` file
and compare `decode`/`sample`/`reconstruct`/`encode`, SavedModel and LiteRT
export with parity. Each refused pair raises at construction, naming both
options and what to use instead.
"""

import itertools
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae import compatibility, edge, evaluation, runs
from keras_vae import config as config_lib

IMAGE = (8, 8)
LATENT = 2
CLASSES = 3


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A tiny labelled 8-bit dataset as an npz: blobs whose place is the label."""
    rng = np.random.default_rng(0)

    def images(n):
        labels = rng.integers(0, CLASSES, n)
        x = rng.integers(0, 60, (n,) + IMAGE)
        for i, label in enumerate(labels):
            x[i, 2 * label: 2 * label + 3, 1:7] += 180
        return x.astype("uint8"), labels.astype("int64")

    (x_train, y_train), (x_test, y_test) = images(64), images(32)
    path = tmp_path_factory.mktemp("data") / "blobs.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return f"npz:{path}"


def config_of(levels, dataset):
    """A run config for one cell of the matrix."""
    # Binary data for the Bernoulli, 8-bit grey levels for the others.
    binarize = "static" if levels["likelihood"] == "bernoulli" else "none"
    return config_lib.resolve({
        "dataset": dataset, "binarize": binarize, "epochs": 1, "batch_size": 32,
        "hidden_units": [16], "conv_filters": [4, 8],
        "likelihood": levels["likelihood"], "prior": levels["prior"],
        "prior_components": 3 if levels["prior"] in ("mixture_of_gaussians", "vamp")
        else None,
        "posterior": levels["posterior"], "objective": levels["objective"],
        "encoder": levels["network"], "decoder": levels["network"],
        "conditional": levels["conditional"] == "yes",
        "free_bits": 0.1 if levels["free_bits"] == "> 0" else 0.0,
        "num_samples": 3 if levels["num_samples"] == "> 1" else 1,
        "use_exact_kl": levels["use_exact_kl"] == "True",
        "importance_groups": 3 if levels["importance_groups"] == "> 1" else 1,
        "ciwae_beta": 0.25 if levels["ciwae_beta"] == "!= 0.5" else 0.5,
        "seed": 1,
        # One latent layer of LATENT, or a hierarchy of LATENT and 1.
        **({"latent_dim": LATENT} if levels["hierarchy"] == "none" else {
            "latent_dims": [LATENT, 1], "inference": levels["hierarchy"],
            "hierarchy_units": [4]}),
    })


class _Keep(keras.callbacks.Callback):
    """Keeps the trained model of a run, to compare with what was saved."""

    def on_train_end(self, logs=None):
        self.trained = self.model


def _inputs(vae, x, labels):
    return runs.inputs(vae, x, labels)


def run_cell(levels, dataset, tmp_path):
    config = config_of(levels, dataset)
    run_dir = str(tmp_path / "run")
    keep = _Keep()
    written = runs.train(config, run_dir, verbose=0, callbacks=[keep])
    assert all(os.path.exists(p) for p in written)
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
    x = runs.build.prepared_test_images(config, splits.x_test)[:5]
    labels = splits.y_test[:5].astype("int32")
    inputs = _inputs(vae, x, labels)
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


def _cell_id(levels):
    return "-".join(f"{v}".replace(" ", "").replace(">", "gt") for v in levels.values())


PAIRS = compatibility.all_pairs()


def test_all_pairs_cover_every_supported_pair():
    for (a, b) in itertools.combinations(compatibility.LEVELS, 2):
        for x in compatibility.LEVELS[a]:
            for y in compatibility.LEVELS[b]:
                refused = compatibility.rule_for((a, x), (b, y)) is not None
                present = any(row[a] == x and row[b] == y for row in PAIRS)
                assert present != refused, (a, x, b, y)
    assert all(compatibility.supported(row) for row in PAIRS)


# The hierarchical cells run in tests/test_combinations_hierarchy.py, a
# module of their own, so that the two test workers share the matrix.
ONE_LAYER = [row for row in PAIRS if row["hierarchy"] == "none"]
HIERARCHICAL = [row for row in PAIRS if row["hierarchy"] != "none"]


@pytest.mark.parametrize("levels", ONE_LAYER, ids=_cell_id)
def test_cell(levels, dataset, tmp_path):
    run_cell(levels, dataset, tmp_path)


def full_product():
    """The supported cells of the full product that all-pairs left out."""
    rows = [dict(zip(compatibility.LEVELS, values, strict=True))
            for values in itertools.product(*compatibility.LEVELS.values())]
    return [row for row in rows if compatibility.supported(row) and row not in PAIRS]


@pytest.mark.slow
def test_cell_of_the_full_product(levels, dataset, tmp_path):
    run_cell(levels, dataset, tmp_path)


def pytest_generate_tests(metafunc):
    """The full product's cells, listed only when slow tests may run: making
    its 13 000 test items took each worker of `make test` about 15 s, only
    to deselect them."""
    if metafunc.function is test_cell_of_the_full_product:
        slow_deselected = "not slow" in (metafunc.config.option.markexpr or "")
        metafunc.parametrize("levels", [] if slow_deselected else full_product(), ids=_cell_id)


def _refused_only_by(rule):
    """Levels holding the rule's pair and otherwise no refused pair, or None
    where other rules imply this one (free bits with MIWAE's groups: no
    objective allows both)."""
    levels = dict([rule.first, rule.second])
    for option, values in compatibility.LEVELS.items():
        if option not in levels:
            allowed = [v for v in values if not any(
                compatibility.rule_for((option, v), (o, w)) for o, w in levels.items())]
            if not allowed:
                return None
            levels[option] = allowed[0]
    return levels


def _build_and_evaluate(config, levels):
    """Build the cell's model; where the evaluator's precision is part of the
    rule, start its evaluation too (the model takes no precision)."""
    vae = runs.build_model({**config, "num_classes": CLASSES}, IMAGE + (1,))
    x = np.zeros((2,) + IMAGE + (1,), "float32")
    evaluation.log_likelihood(vae, x, num_samples=1, verbose=False,
                              precision=levels["precision"])


@pytest.mark.parametrize("rule", compatibility.RULES,
                         ids=lambda r: f"{r.first[0]}-{r.second[0]}-{r.second[1]}")
def test_each_refused_pair_is_refused_up_front(rule, dataset):
    """At construction, or, for the evaluator's precision, before the
    evaluation computes anything."""
    levels = _refused_only_by(rule)
    if levels is None:  # implied by other rules: refused by one of them
        levels = {option: values[0] for option, values in compatibility.LEVELS.items()}
        levels.update(dict([rule.first, rule.second]))
        with pytest.raises(ValueError, match="cannot be combined"):
            _build_and_evaluate(config_of(levels, dataset), levels)
        return
    config = config_of(levels, dataset)
    with pytest.raises(ValueError) as error:
        _build_and_evaluate(config, levels)
    message = str(error.value)
    for option, _ in (rule.first, rule.second):
        assert option in message or (option == "conditional" and "ConditionalVAE"
                                     in message), message
    assert rule.instead in message and "cannot be combined" in message


def test_the_table_in_docs_is_generated_from_the_rules():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "docs", "compatibility.md"), encoding="utf-8") as f:
        assert f.read() == compatibility.markdown(), (
            "docs/compatibility.md is stale: run "
            "`python -m keras_vae.compatibility > docs/compatibility.md`")
