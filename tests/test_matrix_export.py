"""The export cells of the combination matrix: all pairs of the options that
shape the exported graph (`keras_vae.compatibility.GRAPH_OPTIONS`).

Each cell builds its untrained model (`tests/cells.py`), fits the row's
sampler and anomaly detector, and writes a SavedModel and a float32 LiteRT
file with builtin ops and one fixed batch size; `decode` of both gives the
Keras model's images (1e-5), their `score` signatures give the detector's
scores (1e-4) and flags, and the LiteRT file samples finite images, from the
fitted sampler where the row has one. The other variants, batch sizes and signatures are
tested once by `tests/test_export.py`.
"""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf
from cells import IMAGE, build, cell_id, data, fit_detector, fit_sampler, inputs
from conftest import dynamic_dimensions

from keras_vae import _quiet, compatibility, edge, export

PAIRS = compatibility.all_pairs(compatibility.GRAPH_OPTIONS)


@pytest.mark.parametrize("levels", PAIRS, ids=cell_id)
def test_export_cell(levels, tmp_path):
    vae = build(levels)
    x, labels = data(levels)
    sampler = fit_sampler(vae, levels, x, labels)
    detector = fit_detector(vae, levels, x, labels)
    scores = detector.scores(vae, inputs(vae, x[:4], labels[:4]))
    # Flags compared where a score is clear of the threshold: an untrained
    # model can give several images the same score, the threshold among them.
    clear = np.abs(scores - detector.threshold) > 1e-4 * max(1.0, abs(detector.threshold))
    flags = scores > detector.threshold
    labels = labels[:5] if vae.num_classes else None
    z = np.random.default_rng(0).standard_normal((5, vae.latent_dim)).astype("float32")
    expected = np.asarray(vae.decode(z, labels) if vae.num_classes else vae.decode(z))

    served = export.export_saved_model(vae, str(tmp_path), "vae")
    decode = tf.saved_model.load(served).signatures["decode"]
    got = decode(z=tf.constant(z), **({"labels": tf.constant(labels)} if vae.num_classes
                                      else {}))
    np.testing.assert_allclose(np.asarray(next(iter(got.values()))), expected, rtol=1e-5,
                               atol=1e-5)
    conditional = {"labels": tf.constant(labels[:4])} if vae.num_classes else {}
    served_scores = tf.saved_model.load(served).signatures["score"](
        x=tf.constant(x[:4]), **conditional)
    np.testing.assert_allclose(served_scores["score"], scores, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(served_scores["is_anomaly"])[clear], flags[clear])

    with _quiet.converter_logs_hidden():
        paths = export.export_litert(vae, str(tmp_path), "vae", ("none",), batch_sizes=(4,))
    path = paths["none"]
    assert not dynamic_dimensions(path)
    generator = edge.LiteRTGenerator(path)
    np.testing.assert_allclose(generator.decode(z, labels=labels), expected, rtol=1e-5,
                               atol=1e-5)
    drawn = generator.sample(4, labels=None if labels is None else labels[:4],
                             sampler=sampler)
    assert drawn.shape == (4,) + IMAGE and np.all(np.isfinite(drawn))
    on_device = generator.score(x[:4], labels=None if labels is None else labels[:4])
    np.testing.assert_allclose(on_device["score"], scores, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(on_device["is_anomaly"][clear], flags[clear])
    np.testing.assert_allclose(on_device["threshold"], detector.threshold)
    keras.backend.clear_session(free_memory=False)  # gc.collect: 0.2 s a cell


def test_every_supported_pair_of_graph_options_is_in_an_export_cell():
    required = compatibility.required_pairs(compatibility.GRAPH_OPTIONS)
    present = {pair for row in PAIRS for pair in itertools.combinations(row.items(), 2)}
    missing = required - present
    assert not missing, sorted(missing)[:10]
    assert all(compatibility.supported(row) for row in PAIRS)
    assert all(tuple(row) == compatibility.GRAPH_OPTIONS for row in PAIRS)
