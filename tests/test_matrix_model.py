"""The model cells of the combination matrix: every option, all pairs.

Each cell of `keras_vae.compatibility.all_pairs()` builds its model
(`tests/cells.py`), takes a training step, evaluates, estimates the
log-likelihood by importance sampling with a small k at the row's
precision, fits the row's sampler and anomaly detector, makes a `.keras`
round trip that gives the same `decode`, `encode`, `sample`, `reconstruct`
and scores back, and exports the model (`check_exports` of
`tests/test_matrix_export.py`: SavedModel and LiteRT against Keras). All of
it in this process, on tiny data. The user's journey through run
directories and the command line is `tests/test_journeys.py`'s; the full
product of supported levels (without the exports) runs under the `slow`
marker (`make test-all`).
"""

import itertools

import keras
import numpy as np
import pytest
from cells import CLASSES, build, cell_id, data, fit_detector, fit_sampler, inputs
from test_matrix_export import check_exports

from keras_vae import compatibility, evaluation

PAIRS = compatibility.all_pairs()


def run_model_cell(levels, tmp_path, exports=True):
    vae = build(levels)
    x, labels = data(levels)
    batch = inputs(vae, x, labels)
    assert vae.num_classes == (CLASSES if levels["conditional"] == "yes" else None)

    # A training step: finite loss and weights, and the weights moved.
    before = [np.array(w) for w in vae.trainable_weights]
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = vae.fit(batch, epochs=1, batch_size=32, verbose=0).history
    assert np.isfinite(history["loss"][0])
    after = [np.array(w) for w in vae.trainable_weights]
    assert all(np.all(np.isfinite(w)) for w in after)
    assert any(np.abs(a - b).max() > 0 for a, b in zip(after, before, strict=True))

    # Evaluation: the metrics add up to the ELBO's loss where the loss is it.
    scores = vae.evaluate(batch, batch_size=32, verbose=0, return_dict=True)
    assert all(np.isfinite(v) for v in scores.values()), scores
    if levels["objective"] == "elbo":
        assert scores["loss"] == pytest.approx(
            scores["reconstruction_loss"] + scores["kl_loss"], rel=1e-5, abs=1e-5)

    # The importance-sampled log-likelihood, at the row's precision.
    log_px = evaluation.log_likelihood(vae, batch, num_samples=2, verbose=False,
                                       precision=levels["precision"])
    assert log_px.shape == (32,) and np.all(np.isfinite(log_px))

    sampler = fit_sampler(vae, levels, x, labels)
    detector = fit_detector(vae, levels, x, labels, sampler)
    # At most 10% of the fitting data is above the threshold (3 of 32), and
    # the threshold is the 29th smallest score (ties included).
    values = detector.scores(vae, batch)
    assert np.sum(values > detector.threshold) <= 3 <= np.sum(values >= detector.threshold) - 1
    _round_trip(vae, levels, batch, labels, sampler, tmp_path)
    if exports:
        check_exports(vae, x, labels, sampler, detector, tmp_path)
    keras.backend.clear_session(free_memory=False)  # gc.collect: 0.2 s a cell


def _round_trip(vae, levels, batch, labels, sampler, tmp_path):
    """The `.keras` file gives the same model back, sampler included."""
    conditional = {"labels": labels[:5]} if vae.num_classes else {}
    z = np.random.default_rng(0).standard_normal((5, vae.latent_dim)).astype("float32")
    outputs = {
        "decode": lambda m: m.decode(z, **conditional),
        "sample": lambda m: m.sample(5, seed=3, sampler=sampler, **conditional),
        "reconstruct": lambda m: m.reconstruct(_first(batch, 5)),
        "encode": lambda m: m.encode(_first(batch, 5))[0],
        "score": lambda m: m.detector.scores(m, _first(batch, 5)),
    }
    expected = {name: np.asarray(f(vae)) for name, f in outputs.items()}
    for name, value in expected.items():
        assert np.all(np.isfinite(value)), name
    assert expected["decode"].shape == (5,) + tuple(vae.data_shape)
    path = str(tmp_path / "model.keras")
    vae.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(vae) and loaded.objective == vae.objective
    assert sorted(loaded.samplers) == sorted(vae.samplers)
    for name, f in outputs.items():
        np.testing.assert_allclose(np.asarray(f(loaded)), expected[name], rtol=1e-5,
                                   atol=1e-6, err_msg=name)


def _first(batch, n):
    if isinstance(batch, dict):
        return {key: value[:n] for key, value in batch.items()}
    return batch[:n]


# Two classes, so that pytest-xdist's loadscope gives each half to a worker.
class TestEvenRows:
    @pytest.mark.parametrize("levels", PAIRS[0::2], ids=cell_id)
    def test_model_cell(self, levels, tmp_path):
        run_model_cell(levels, tmp_path)


class TestOddRows:
    @pytest.mark.parametrize("levels", PAIRS[1::2], ids=cell_id)
    def test_model_cell(self, levels, tmp_path):
        run_model_cell(levels, tmp_path)


def test_every_supported_pair_is_in_a_model_cell():
    required = compatibility.required_pairs()
    present = {pair for row in PAIRS
               for pair in itertools.combinations(row.items(), 2)}
    missing = required - present
    assert not missing, sorted(missing)[:10]
    assert all(compatibility.supported(row) for row in PAIRS)
    # Every level of every option is in some cell, the replaced ones (None) aside.
    for option, levels in compatibility.LEVELS.items():
        assert set(levels) <= {row[option] for row in PAIRS}, option


def full_product():
    """The supported rows of the full product that all-pairs left out, each
    replaced option (a hierarchy's prior and posterior) at None."""
    rows, seen = [], {tuple(row.values()) for row in PAIRS}
    for values in itertools.product(*compatibility.LEVELS.values()):
        row = dict(zip(compatibility.LEVELS, values, strict=True))
        row.update({option: None for option in compatibility.replaced(row)})
        if tuple(row.values()) not in seen and compatibility.supported(row):
            seen.add(tuple(row.values()))
            rows.append(row)
    return rows


@pytest.mark.slow
def test_model_cell_of_the_full_product(levels, tmp_path):
    run_model_cell(levels, tmp_path, exports=False)


def pytest_generate_tests(metafunc):
    """The full product's cells, listed only when slow tests may run
    (thousands of items, which `make test` would build only to deselect)."""
    if metafunc.function is test_model_cell_of_the_full_product:
        slow_deselected = "not slow" in (metafunc.config.option.markexpr or "")
        metafunc.parametrize("levels", [] if slow_deselected else full_product(), ids=cell_id)
