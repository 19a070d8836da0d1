"""Anomaly detectors (issue 34): scores against NumPy, the threshold's
false-positive rate on fresh data, saving, the command line and exports."""

import csv
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_vae
from PIL import Image

from keras_vae import cli, data, edge, export
from keras_vae.models import detectors, samplers, scores


def _log_normal(z, loc, scale):
    return np.sum(-0.5 * ((z - loc) / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi), -1)


def _numpy_scores(vae, x, eps):
    """The four scores written out in NumPy from the networks' outputs: a
    diagonal posterior, the standard normal prior, a Bernoulli likelihood."""
    loc, scale = (np.asarray(t, "float64") for t in vae.encode(x))
    flat = x.reshape(len(x), -1).astype("float64")

    def log_px(z):
        logits = np.asarray(vae.decoder(z.astype("float32")), "float64").reshape(len(z), -1)
        return np.sum(flat * -np.logaddexp(0, -logits) + (1 - flat) * -np.logaddexp(0, logits),
                      -1)

    z = loc[None] + scale[None] * eps  # (k, batch, d)
    log_w = np.stack([log_px(zi) + _log_normal(zi, 0.0, 1.0) - _log_normal(zi, loc, scale)
                      for zi in z])
    k = len(eps)
    return {"elbo": -log_w.mean(0),
            "log_likelihood": -(np.logaddexp.reduce(log_w, 0) - np.log(k)),
            "reconstruction": -log_px(loc),
            "latent": -_log_normal(loc, 0.0, 1.0)}


@pytest.fixture(scope="module")
def trained():
    """A small model trained on blob images: rows 0-3 bright."""
    rng = np.random.default_rng(0)
    x = (rng.random((600, 6, 6, 1)) < 0.15).astype("float32")
    x[:, :3] = np.maximum(x[:, :3], rng.random((600, 3, 6, 1)) < 0.8)
    vae = small_vae()
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    vae.fit(x[:400], epochs=5, batch_size=50, verbose=0)
    return vae, x


@pytest.mark.parametrize("name", scores.names())
def test_each_score_is_its_formula(trained, name):
    vae, x = trained
    detector = detectors.Detector(name, num_samples=5, seed=3)
    eps = scores.noise(vae.latent_dim, 5, 3)
    expected = _numpy_scores(vae, x[:40], eps)[name]
    np.testing.assert_allclose(detector.scores(vae, x[:40]), expected, rtol=2e-5, atol=2e-4)


def test_a_score_depends_on_the_example_alone(trained):
    vae, x = trained
    detector = detectors.Detector("log_likelihood", num_samples=4)
    whole = detector.scores(vae, x[:50], batch_size=50)
    np.testing.assert_allclose(detector.scores(vae, x[:50], batch_size=7), whole, rtol=1e-6)
    np.testing.assert_allclose(detector.scores(vae, x[10:11]), whole[10:11], rtol=1e-6)
    assert not np.allclose(detectors.Detector("log_likelihood", 4, seed=1).scores(
        vae, x[:50]), whole)  # the seed fixes the noise


def test_the_threshold_keeps_its_false_positive_rate_on_fresh_normal_data():
    """Fitted on n normal examples at rate α, the share of m fresh ones
    flagged is α within 3 standard errors √(α(1 − α)(1/n + 1/m))."""
    rng = np.random.default_rng(5)
    x = (rng.random((6000, 6, 6, 1)) < 0.3).astype("float32")
    vae = small_vae()
    for rate in (0.01, 0.05):
        detector = vae.fit_detector(x[:3000], false_positive_rate=rate, num_samples=2)
        fitted = detector.scores(vae, x[:3000]) > detector.threshold
        assert fitted.mean() <= rate
        fresh = detector.flags(detector.scores(vae, x[3000:]))
        error = np.sqrt(rate * (1 - rate) * (2 / 3000))
        assert abs(fresh.mean() - rate) < 3 * error, (rate, fresh.mean())
        assert detector.normal_examples == 3000 and detector.false_positive_rate == rate


def test_the_detector_is_saved_in_the_model_file(trained, tmp_path):
    vae, x = trained
    detector = vae.fit_detector(x[400:], score="reconstruction", false_positive_rate=0.05)
    vae.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.detector.threshold == detector.threshold
    assert type(loaded.detector.score) is scores.Reconstruction
    np.testing.assert_allclose(loaded.detector.scores(loaded, x[:20]),
                               detector.scores(vae, x[:20]), rtol=1e-6)


def test_bad_detector_requests_are_refused_with_what_to_do(trained):
    vae, x = trained
    with pytest.raises(ValueError, match=r"Unknown score: 'mahalanobis'"):
        detectors.Detector("mahalanobis")
    for rate in (0, 1, -0.1, True, "0.1"):
        with pytest.raises(ValueError, match=r"Invalid false_positive_rate: .*Expected a "
                                             r"share in \(0, 1\)"):
            detectors.Detector().fit(vae, x[:100], rate)
    with pytest.raises(ValueError, match=r"at a false-positive rate of 0.01 needs at least "
                                         r"100 normal examples; received 50"):
        detectors.Detector().fit(vae, x[:50], 0.01)
    nan = x[:200].copy()
    nan[3, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"1 of the 200 normal scores are NaN or infinite, "
                                         r"so no threshold can be set"):
        detectors.Detector().fit(vae, nan, 0.05)
    with pytest.raises(ValueError, match="no threshold yet: fit it on normal data first"):
        detectors.Detector().flags([1.0])
    with pytest.raises(ValueError, match="Expected a fitted keras_vae.detectors.Detector"):
        vae.add_detector(detectors.Detector())
    fresh = small_vae()
    with pytest.raises(ValueError, match="has no anomaly detector. Fit one on held-out "
                                         "normal data: keras-vae fit-detector RUN"):
        fresh.detector_or_refuse()
    with pytest.raises(ValueError, match="No sampler named 'gmm'"):
        fresh.add_detector(detectors.Detector(scores.LatentDensity("gmm"), threshold=1.0))


@pytest.mark.parametrize("score", ["elbo", "latent_under_a_fitted_mixture"])
def test_the_exports_score_as_the_model_does(trained, tmp_path, score):
    """SavedModel `score` and LiteRT float32 `score_<B>` (through
    `keras_vae.edge`) give the model's scores (1e-4) and flags: the
    negative ELBO, and the latent density under a fitted Gaussian mixture
    (full covariances, builtin ops in the LiteRT file)."""
    vae, x = trained
    if score != "elbo":
        vae.add_sampler("gmm", samplers.fit_gaussian_mixture(vae, x[:400], num_components=3)[0])
        score = scores.LatentDensity(sampler="gmm")
    detector = vae.fit_detector(x[400:], score=score, false_positive_rate=0.1)
    expected = detector.scores(vae, x[:70])
    flags = expected > detector.threshold
    assert 0 < flags.sum() < 70
    served = tf.saved_model.load(export.export_saved_model(vae, str(tmp_path), "vae"))
    out = served.signatures["score"](x=tf.constant(x[:70]))
    np.testing.assert_allclose(out["score"], expected, rtol=1e-4)
    np.testing.assert_array_equal(out["is_anomaly"], flags)
    np.testing.assert_allclose(out["threshold"], np.full(70, detector.threshold), rtol=1e-7)
    path = export.export_litert(vae, str(tmp_path), "vae", ("none",), batch_sizes=(1, 16))
    on_device = edge.LiteRTGenerator(path["none"]).score(x[:70])
    np.testing.assert_allclose(on_device["score"], expected, rtol=1e-4)
    np.testing.assert_array_equal(on_device["is_anomaly"], flags)
    with pytest.raises(ValueError, match=r"Expected x of shape \(n, 6, 6, 1\)"):
        edge.LiteRTGenerator(path["none"]).score(x[:3, :5])


def test_a_file_without_a_detector_says_how_to_get_one(tmp_path):
    vae = small_vae()
    path = export.export_litert(vae, str(tmp_path), "vae", ("none",), batch_sizes=(1,))
    with pytest.raises(ValueError, match="has no score signatures: its model had no "
                                         "anomaly detector. Fit one"):
        edge.LiteRTGenerator(path["none"]).score(np.zeros((1, 6, 6, 1)))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("detect")
    rng = np.random.default_rng(0)
    np.savez(folder / "normal.npz", x=(rng.random((300, 8, 8)) * 60).astype("uint8"),
             y=rng.integers(0, 2, 300))
    odd = (rng.random((40, 8, 8)) * 60).astype("uint8")
    odd[:, 2:6, 2:6] = 250  # a bright square: never seen in training
    np.savez(folder / "odd.npz", x_train=odd[:20], x_test=odd[20:])
    run = str(folder / "run")
    assert cli.main(["train", "--dataset", f"npz:{folder / 'normal.npz'}", "--epochs", "8",
                     "--hidden-units", "32", "--latent-dim", "2", "--batch-size", "32",
                     "--binarize", "none", "--likelihood", "gaussian", "--run-dir", run]) == 0
    return run, folder


def test_fit_detector_and_detect_from_the_command_line(run_dir, capsys):
    run, folder = run_dir
    assert cli.main(["detect", run, "mnist"]) == 2
    assert "has no anomaly detector. Fit one on held-out normal data: keras-vae " \
        "fit-detector RUN" in capsys.readouterr().err
    assert cli.main(["fit-detector", run, "--normal", f"npz:{folder / 'normal.npz'}",
                     "--false-positive-rate", "0.05", "--score", "reconstruction"]) == 0
    fitted = json.loads(open(os.path.join(run, "detector.json")).read())
    assert fitted["score"] == "reconstruction" and fitted["normal_examples"] == 30
    assert fitted["fitted_on"] == f"30 examples of npz:{folder / 'normal.npz'} test"
    assert cli.main(["detect", run, f"npz:{folder / 'odd.npz'}"]) == 0
    out = os.path.join(run, "detect", "odd.npz")
    with open(os.path.join(out, "scores.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [r["split"] for r in rows] == ["train"] * 20 + ["test"] * 20
    assert [int(r["index"]) for r in rows] == list(range(20)) * 2
    assert all(int(r["is_anomaly"]) == (float(r["score"]) > fitted["threshold"]) for r in rows)
    assert sum(int(r["is_anomaly"]) for r in rows) == 40  # a bright square is anomalous
    for name in ("score_histogram.png", "most_anomalous.png"):
        assert Image.open(os.path.join(out, name)).format == "PNG"
    # The 8 shown: 3 rows (example, reconstruction, error) of 8 tiles of 80 pixels.
    assert Image.open(os.path.join(out, "most_anomalous.png")).size[0] == 8 * 80


def test_detect_refuses_bad_requests(run_dir, capsys, tmp_path):
    run, folder = run_dir
    if not os.path.exists(os.path.join(run, "detector.json")):  # run alone, or on another worker
        assert cli.main(["fit-detector", run, "--false-positive-rate", "0.1"]) == 0
    np.savez(tmp_path / "wide.npz", x=np.zeros((30, 8, 9), "uint8"))
    for argv, message in [
        (["fit-detector", run, "--false-positive-rate", "2"], "Invalid false_positive_rate"),
        (["fit-detector", run, "--score", "knn"], "invalid choice: 'knn'"),
        (["fit-detector", run, "--false-positive-rate", "0.001"], "needs at least 1000"),
        (["detect", run, f"npz:{tmp_path / 'wide.npz'}"], "has examples of shape (8, 9, 1); "
         "the model takes (8, 8, 1)"),
        (["detect", run, "npz:/none.npz", "--split", "both"], "invalid choice: 'both'"),
    ]:
        try:
            code = cli.main(argv)
        except SystemExit as exit_:
            code = exit_.code
        assert code == 2, argv
        assert message in capsys.readouterr().err, argv


def test_the_edge_script_scores_without_tensorflow(trained, tmp_path):
    import subprocess
    import sys

    vae, x = trained
    detector = vae.fit_detector(x[400:], false_positive_rate=0.1)
    path = export.export_litert(vae, str(tmp_path), "vae", ("none",), batch_sizes=(16,))
    np.save(tmp_path / "x.npy", x[:20])
    script = os.path.join(os.path.dirname(__file__), os.pardir, "export", "edge_score.py")
    # TensorFlow made unimportable: the script must not need it.
    (tmp_path / "tensorflow.py").write_text("raise ImportError('no TensorFlow here')\n")
    result = subprocess.run(
        [sys.executable, script, path["none"], str(tmp_path / "x.npy"), "--out",
         str(tmp_path / "s.csv")], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "s.csv") as f:
        rows = list(csv.DictReader(f))
    expected = detector.scores(vae, x[:20])
    np.testing.assert_allclose([float(r["score"]) for r in rows], expected, rtol=1e-4)
    assert [int(r["is_anomaly"]) for r in rows] == list((expected > detector.threshold) * 1)
    bad = subprocess.run([sys.executable, script, path["none"], str(tmp_path / "none.npy")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "No input file at" in bad.stderr


def test_the_latent_score_under_a_fitted_sampler_from_the_command_line(run_dir, capsys):
    run, _ = run_dir
    assert cli.main(["fit-detector", run, "--score", "elbo", "--sampler", "gmm"]) == 2
    assert "is the density of the latent score" in capsys.readouterr().err
    assert cli.main(["fit-detector", run, "--score", "latent", "--sampler", "gmm"]) == 2
    assert "No sampler named 'gmm'" in capsys.readouterr().err
    assert cli.main(["fit-sampler", run, "--components", "2"]) == 0
    assert cli.main(["fit-detector", run, "--score", "latent", "--sampler", "gmm",
                     "--false-positive-rate", "0.1"]) == 0
    vae = keras.saving.load_model(os.path.join(run, "model.keras"))
    assert vae.detector.score.sampler == "gmm"
    codes = np.asarray(vae.encode(np.zeros((3, 8, 8, 1), "float32"))[0])
    expected = -np.asarray(vae.samplers["gmm"].log_prob(codes))
    np.testing.assert_allclose(vae.detector.scores(vae, np.zeros((3, 8, 8, 1))), expected,
                               rtol=1e-5)


def test_a_binarized_run_is_scored_on_grey_levels_as_the_exports_are(run_dir, tmp_path):
    """The threshold of a run trained on binarized images is set on the
    grey-level images themselves, which is what TF Serving and devices send."""
    _, folder = run_dir
    run = str(tmp_path / "binarized")
    assert cli.main(["train", "--dataset", f"npz:{folder / 'normal.npz'}", "--epochs", "1",
                     "--hidden-units", "8", "--latent-dim", "2", "--binarize", "static",
                     "--run-dir", run]) == 0
    assert cli.main(["fit-detector", run, "--false-positive-rate", "0.1"]) == 0
    vae = keras.saving.load_model(os.path.join(run, "model.keras"))
    test = data.load(f"npz:{folder / 'normal.npz'}", seed=0).x_test
    grey = test.astype("float32") / 255.0
    values = vae.detector.scores(vae, grey)
    assert vae.detector.threshold == pytest.approx(np.quantile(values, 0.9, method="higher"),
                                                   rel=1e-6)


def test_scoring_is_estimated_and_refused_over_its_limits(run_dir, capsys):
    """Issue 36: --num-samples 100000000 once ran out of memory (the fuzzer
    found it); now the estimate refuses it, naming the flag."""
    run, folder = run_dir
    assert cli.main(["fit-detector", run, "--num-samples", "100000000"]) == 2
    err = capsys.readouterr().err
    assert "Scoring 30 examples with 100000000 samples each would take about" in err
    assert "raise it with --max-memory GIB" in err and "give fewer --num-samples" in err
    assert cli.main(["detect", run, f"npz:{folder / 'odd.npz'}", "--max-minutes", "1e-9"]) == 2
    assert "the limit is 1e-09 minutes: raise it with --max-minutes" in capsys.readouterr().err
