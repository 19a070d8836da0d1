"""Numeric tables as data (issue 34): csv: and parquet: sources, columns
standardised by the model, their errors, and the round trip from a CSV file
to the flags of a LiteRT file."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import keras_vae
import keras_vae.runs
from keras_vae import cli, edge
from keras_vae.data import tables
from keras_vae.distributions.standardized import Standardized


def _table(n=400, seed=0):
    """Three correlated columns in their own units, and a label."""
    rng = np.random.default_rng(seed)
    t = rng.normal(size=n)
    return pd.DataFrame({"temperature": 20 + 5 * t + rng.normal(0, 0.5, n),
                         "pressure": 1000 + 30 * t + rng.normal(0, 2, n),
                         "valve": (t > 0).astype(int),
                         "state": np.where(rng.random(n) < 0.5, "ok", "check")})


def test_a_csv_and_a_parquet_file_give_the_same_splits(tmp_path):
    frame = _table()
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    a = keras_vae.data.load(f"csv:{tmp_path / 't.csv'}", label_column="state", seed=3)
    b = keras_vae.data.load(f"parquet:{tmp_path / 't.parquet'}", label_column="state", seed=3)
    assert a.columns == ["temperature", "pressure", "valve"] and a.class_names == ["check", "ok"]
    assert a.image_shape == (3,) and a.train.count == 360 and a.test.count == 40
    np.testing.assert_allclose(a.x_train, b.x_train, rtol=1e-6)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    # The rows are the file's, in its units, with the label coded in sorted order.
    rows = frame[["temperature", "pressure", "valve"]].to_numpy("float32")
    order = np.random.default_rng(3).permutation(400)
    np.testing.assert_allclose(a.x_test, rows[order[:40]], rtol=1e-6)
    np.testing.assert_array_equal(a.y_test, (frame["state"].to_numpy()[order[:40]] == "ok") * 1)


@pytest.mark.parametrize("content, message", [
    ("", "is empty: a table needs a header row"),
    ("a,b\n", "has a header but no data rows"),
    ("a,b\n1,2\n3,x\n", "the column(s) ['b'] are not numeric (for example '2')"),
    ("a,b\n1,2\n3,\n4,5\n", "row 2 has no value in column 'b' (1 missing value(s) in all)"),
    ("a,b\n1,nan\n", "row 1 has no value in column 'b'"),
    ("a,b\n1,inf\n2,3\n", "row 1 has an infinite value in column 'b'"),
    ("a,b\n1,2\n2,-1e39\n", "row 2 has the value -1e+39, beyond float32's ±3.4e38, in "
                             "column 'b'"),
    ("a\n1\n", "has 1 row(s); at least 2 are needed"),
])
def test_bad_tables_are_refused_naming_the_row_or_column(tmp_path, content, message):
    (tmp_path / "t.csv").write_text(content)
    with pytest.raises(ValueError) as error:
        keras_vae.data.load(f"csv:{tmp_path / 't.csv'}")
    assert message in str(error.value)


def test_the_label_column_must_exist_and_belongs_to_tables(tmp_path):
    _table(20).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ValueError, match=r"has no column 'label' for the labels; its columns "
                                         r"are \['temperature', 'pressure', 'valve', 'state'\]"):
        keras_vae.data.load(f"csv:{tmp_path / 't.csv'}", label_column="label")
    with pytest.raises(ValueError, match="label_column names a column of a table"):
        keras_vae.data.load("mnist", label_column="state")


def test_the_standardized_likelihood_is_the_change_of_variables():
    rng = np.random.default_rng(1)
    x = rng.normal([5.0, -300.0], [2.0, 40.0], size=(64, 2)).astype("float32")
    wrapped = Standardized.fit("gaussian_learned_scale", x, ["a", "b"])
    np.testing.assert_allclose(wrapped.column_mean, x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(wrapped.column_scale, x.std(0), rtol=1e-5)
    params = rng.normal(size=(64, 4)).astype("float32")  # loc and raw scale per column
    distribution = wrapped.distribution(params, 1)
    loc, raw = params[:, :2], params[:, 2:]
    sigma = 0.01 + np.log1p(np.exp(raw + np.log(np.e - 1)))
    u = (x - x.mean(0)) / x.std(0)
    expected = np.sum(-0.5 * ((u - loc) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)
                      - np.log(x.std(0)), axis=1)
    np.testing.assert_allclose(wrapped.log_prob(distribution, x), expected, rtol=1e-4)
    np.testing.assert_allclose(wrapped.mean(params), x.mean(0) + x.std(0) * loc, rtol=1e-5)
    with pytest.raises(ValueError, match="input='table' cannot be combined with "
                                         "likelihood='bernoulli'"):
        keras_vae.VAE((1,), latent_dim=1, likelihood=Standardized("bernoulli", [0.0], [1.0]))
    with pytest.raises(ValueError, match="a positive, finite scale per column"):
        Standardized("gaussian", [0.0, 1.0], [1.0, 0.0])


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """A run trained on a CSV file's normal rows, with a detector at 10%; a
    CSV of 30 rows whose pressure the temperature never gives."""
    folder = tmp_path_factory.mktemp("table")
    frame = _table(600)
    normal = frame[frame["state"] == "ok"].drop(columns="state")
    normal.to_csv(folder / "normal.csv", index=False)
    odd = normal.iloc[:30].copy()
    odd["pressure"] = odd["pressure"] - 200
    odd.to_csv(folder / "odd.csv", index=False)
    run = str(folder / "run")
    assert cli.main(["train", "--dataset", f"csv:{folder / 'normal.csv'}", "--epochs", "30",
                     "--hidden-units", "32", "--latent-dim", "2", "--batch-size", "32",
                     "--likelihood", "gaussian_learned_scale", "--binarize", "none",
                     "--run-dir", run]) == 0
    pictures = sorted(p for p in os.listdir(run) if p.endswith(".png"))
    assert cli.main(["fit-detector", run, "--false-positive-rate", "0.1"]) == 0
    return run, folder, normal, pictures


@pytest.mark.long  # 15 s: detect and export from the command line (the matrix's table cells
# export and score in make test; the edge script's test below exports this run itself)
def test_a_table_from_csv_to_the_flags_of_a_litert_file(table_run):
    run, folder, _, pictures = table_run
    assert pictures == ["latent_map.png", "training_curves.png"]  # the rows' codes can be drawn
    assert cli.main(["detect", run, f"csv:{folder / 'odd.csv'}", "--split", "all"]) == 0
    with open(os.path.join(run, "detect", "odd.csv", "scores.csv")) as f:
        flagged = [int(r["is_anomaly"]) for r in csv.DictReader(f)]
    assert sum(flagged) >= 27  # 30 rows, each 5+ standard deviations off the line
    assert not os.path.exists(os.path.join(run, "detect", "odd.csv", "most_anomalous.png"))
    assert cli.main(["export", run, "--formats", "tflite", "--quantize", "none",
                     "--batch-sizes", "8"]) == 0
    # The LiteRT file takes raw rows, in the file's units.
    rows = pd.read_csv(folder / "odd.csv").to_numpy("float32")
    on_device = edge.LiteRTGenerator(os.path.join(run, "export", "vae_float32.tflite")).score(rows)
    vae = keras_vae.runs.load_vae_file(os.path.join(run, "model.keras"))
    expected = vae.detector.scores(vae, rows)
    np.testing.assert_allclose(on_device["score"], expected, rtol=1e-4)
    np.testing.assert_array_equal(on_device["is_anomaly"], expected > vae.detector.threshold)
    assert on_device["is_anomaly"].sum() == sum(flagged)  # the same rows, as detect flagged
    metadata = json.load(open(os.path.join(run, "export", "vae_metadata.json")))
    assert metadata["columns"] == ["temperature", "pressure", "valve"]


def test_the_edge_script_scores_a_csv_file_by_its_column_names(table_run, tmp_path):
    """export/edge_score.py takes a CSV (columns by name, in any order, an
    extra id column left out) and gives the model's flags, without TensorFlow."""
    run, folder, _, _ = table_run
    assert cli.main(["export", run, "--formats", "tflite", "--quantize", "none",
                     "--batch-sizes", "8", "--overwrite"]) == 0
    model = os.path.join(run, "export", "vae_float32.tflite")
    odd = pd.read_csv(folder / "odd.csv")
    shuffled = odd[["valve", "pressure", "temperature"]].assign(id=range(30))
    shuffled.to_csv(tmp_path / "rows.csv", index=False, encoding="utf-8-sig")  # with a BOM
    with open(tmp_path / "rows.csv", "a") as f:
        f.write("\n")  # and a blank last line, as editors leave
    (tmp_path / "tensorflow.py").write_text("raise ImportError('no TensorFlow here')\n")
    result = _edge_score(model, tmp_path / "rows.csv", tmp_path)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(result.stdout.splitlines()))
    vae = keras_vae.runs.load_vae_file(os.path.join(run, "model.keras"))
    expected = vae.detector.scores(vae, odd.to_numpy("float32"))
    np.testing.assert_allclose([float(r["score"]) for r in rows], expected, rtol=1e-4)
    assert [int(r["is_anomaly"]) for r in rows] == list((expected > vae.detector.threshold) * 1)
    shuffled.loc[4, "pressure"] = None
    shuffled.to_csv(tmp_path / "gap.csv", index=False)
    odd.drop(columns="valve").to_csv(tmp_path / "narrow.csv", index=False)
    for name, message in (("gap.csv", "gap.csv, line 6, column 'pressure': expected a finite"),
                          ("narrow.csv", "(missing: ['valve'])")):
        result = _edge_score(model, tmp_path / name, tmp_path)
        assert result.returncode == 2 and message in result.stderr, result.stderr


def _edge_score(model, rows, folder):
    script = os.path.join(os.path.dirname(__file__), os.pardir, "export", "edge_score.py")
    return subprocess.run([sys.executable, script, model, str(rows)], capture_output=True,
                          text=True, cwd=folder, env={**os.environ, "PYTHONPATH": str(folder)})


def test_pictures_and_the_web_page_are_refused_for_tables(table_run, capsys):
    run = table_run[0]
    capsys.readouterr()
    for argv in (["sample", run], ["interpolate", run], ["export", run, "--formats", "web"]):
        assert cli.main(argv) == 2
        assert "a table's rows are not images" in capsys.readouterr().err


def test_a_table_with_other_columns_is_refused_by_detect(table_run, tmp_path, capsys):
    run, _, normal, _ = table_run
    normal.rename(columns={"valve": "flow"}).to_csv(tmp_path / "renamed.csv", index=False)
    capsys.readouterr()
    assert cli.main(["detect", run, f"csv:{tmp_path / 'renamed.csv'}"]) == 2
    assert ("has the columns ['temperature', 'pressure', 'flow']; the model was trained on "
            "['temperature', 'pressure', 'valve']") in capsys.readouterr().err
    assert tables.KINDS == ("csv", "parquet")


def test_a_table_has_no_bits_per_dimension():
    wrapped = Standardized.fit("gaussian_learned_scale", np.ones((4, 2)) * [[1], [2], [3], [4]])
    convention, reason = keras_vae.evaluation.bits_convention(wrapped, binarized=False)
    assert convention is None and "reported in nats per row" in reason
