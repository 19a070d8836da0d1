"""What every cell of the combination matrix checks of its exports.

Each model cell (`tests/test_matrix_model.py`) ends by exporting its model:
the rows of all pairs of every option hold all pairs of the options that
shape the exported graph (`keras_vae.compatibility.GRAPH_OPTIONS`), checked
below, so one pass over the rows covers training and export (a separate
pass over the graph options' pairs built, fitted and traced the same models
again). `check_exports` writes a SavedModel and a float32 LiteRT file with
builtin ops and one fixed batch size: `decode` of both gives the Keras
model's images (1e-5), their `score` signatures give the detector's scores
(1e-4) and flags, and the LiteRT file samples finite images, from the
fitted sampler where the row has one. The other variants, batch sizes and
signatures are tested once by `tests/test_export.py`.
"""

import itertools

import numpy as np
import tensorflow as tf
from cells import inputs
from conftest import dynamic_dimensions

from keras_vae import _quiet, compatibility, edge, export


def check_exports(vae, x, labels, sampler, detector, tmp_path):
    """The SavedModel and LiteRT float32 exports of a cell's model against it."""
    scores = detector.scores(vae, inputs(vae, x[:4], labels[:4]))
    # Flags compared where a score is clear of the threshold: an untrained
    # model can give several images the same score, the threshold among them.
    clear = np.abs(scores - detector.threshold) > 1e-4 * max(1.0, abs(detector.threshold))
    flags = scores > detector.threshold
    labels = labels[:5] if vae.num_classes else None
    z = np.random.default_rng(0).standard_normal((5, vae.latent_dim)).astype("float32")
    expected = np.asarray(vae.decode(z, labels) if vae.num_classes else vae.decode(z))

    served = tf.saved_model.load(export.export_saved_model(vae, str(tmp_path), "vae"))
    conditional = {"labels": tf.constant(labels)} if vae.num_classes else {}
    got = served.signatures["decode"](z=tf.constant(z), **conditional)
    np.testing.assert_allclose(np.asarray(next(iter(got.values()))), expected, rtol=1e-5,
                               atol=1e-5)
    conditional = {"labels": tf.constant(labels[:4])} if vae.num_classes else {}
    served_scores = served.signatures["score"](x=tf.constant(x[:4]), **conditional)
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
    assert drawn.shape == (4,) + tuple(vae.data_shape) and np.all(np.isfinite(drawn))
    on_device = generator.score(x[:4], labels=None if labels is None else labels[:4])
    np.testing.assert_allclose(on_device["score"], scores, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(on_device["is_anomaly"][clear], flags[clear])
    np.testing.assert_allclose(on_device["threshold"], detector.threshold)


def test_the_model_cells_hold_every_pair_of_graph_options():
    from test_matrix_model import PAIRS

    required = compatibility.required_pairs(compatibility.GRAPH_OPTIONS)
    present = {pair for row in PAIRS for pair in itertools.combinations(
        ((option, row[option]) for option in compatibility.GRAPH_OPTIONS), 2)}
    missing = required - present
    assert not missing, sorted(missing)[:10]
