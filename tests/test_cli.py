"""The keras-vae command end to end on small MNIST runs: training in a
subprocess, as a user runs it, and the other commands through `cli.main`
in this process (the same code path, without a TensorFlow start each)."""

import argparse
import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
import types

import keras
import matplotlib.image
import numpy as np
import pytest
import tensorflow as tf

import keras_vae
from keras_vae import cli, edge, runs

TINY = ["--dataset", "mnist", "--limit", "600", "--epochs", "2", "--batch-size", "100",
        "--hidden-units", "64", "--latent-dim", "2", "--seed", "1"]
NOISE = ("oneDNN", "cuda", "absl::InitializeLog", "rebuild TensorFlow")


def keras_vae_command(*args, timeout=300, check=True):
    """`python -m keras_vae ARGS` in a fresh process, as a user runs it."""
    result = subprocess.run([sys.executable, "-m", "keras_vae", *args],
                            capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def in_process(*args, check=True):
    """`keras-vae ARGS` through `cli.main` in this process (the command's
    own code path, without a TensorFlow start per call); its exit code and
    what it printed on sys.stdout and sys.stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    result = types.SimpleNamespace(returncode=code, stdout=out.getvalue(),
                                   stderr=err.getvalue())
    if check:
        assert code == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("cli") / "run")
    result = keras_vae_command("train", *TINY, "--run-dir", run_dir)
    return run_dir, result


def test_console_script_is_installed():
    script = os.path.join(os.path.dirname(sys.executable), "keras-vae")
    result = subprocess.run([script, "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("train", "evaluate", "sample", "reconstruct", "interpolate", "latent-map"):
        assert command in result.stdout


def test_train_writes_the_run_directory(run):
    run_dir, result = run
    for name in ("config.json", "model.keras", "history.csv", "tensorboard",
                 "samples.png", "reconstructions.png", "interpolation.png",
                 "latent_map.png", "training_curves.png"):
        assert os.path.exists(os.path.join(run_dir, name)), name
        assert os.path.join(run_dir, name) in result.stdout  # the summary names it
    assert not os.path.exists(os.path.join(run_dir, "backup"))
    assert not any(noise in result.stderr for noise in NOISE), result.stderr[-2000:]
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    assert config["latent_dim"] == 2 and config["hidden_units"] == [64]
    assert config["binarize"] == "dynamic" and config["epochs"] == 2


def test_history_csv_has_one_row_per_epoch(run):
    run_dir, _ = run
    with open(os.path.join(run_dir, "history.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    for row in rows:
        assert float(row["loss"]) == pytest.approx(
            float(row["reconstruction_loss"]) + float(row["kl_loss"]), rel=1e-5)
    assert float(rows[1]["loss"]) < float(rows[0]["loss"])


def test_model_file_reloads(run):
    run_dir, _ = run
    vae = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    assert isinstance(vae, keras_vae.VAE) and vae.latent_dim == 2
    samples = np.asarray(vae.sample(16, seed=0))
    assert samples.std(axis=0).mean() > 0.01  # the samples differ from each other


def _event_tags(folder):
    tags = {}
    for root, _, files in os.walk(folder):
        for name in files:
            for event in tf.compat.v1.train.summary_iterator(os.path.join(root, name)):
                for value in event.summary.value:
                    tags.setdefault(value.tag, set()).add(event.step)
    return tags


def test_tensorboard_has_scalars_and_images_every_epoch(run):
    run_dir, _ = run
    tags = _event_tags(os.path.join(run_dir, "tensorboard"))
    assert tags["samples"] == {0, 1}
    assert tags["reconstructions (original | reconstruction)"] == {0, 1}
    assert {"epoch_loss", "epoch_kl_loss", "epoch_reconstruction_loss"} <= set(tags)


def test_pictures_are_not_blank(run):
    run_dir, _ = run
    for name in runs.PICTURES:
        picture = matplotlib.image.imread(os.path.join(run_dir, f"{name}.png"))
        grey = picture[..., :3].mean(axis=-1)
        assert grey.std() > 0.05, name
        assert len(np.unique(np.round(grey, 2))) > 10, name


def test_evaluate_prints_a_table_and_writes_json(run):
    run_dir, _ = run
    result = in_process("evaluate", run_dir)
    with open(os.path.join(run_dir, "evaluation.json")) as f:
        scores = json.load(f)
    assert scores["examples"] == 10000 and scores["binarize"] == "dynamic"
    assert scores["negative_elbo"] == pytest.approx(
        scores["reconstruction_loss"] + scores["kl_loss"], rel=1e-5)
    assert 100 < scores["negative_elbo"] < 543
    assert "negative ELBO" in result.stdout
    assert f"{scores['negative_elbo']:.2f}" in result.stdout


def test_evaluate_with_likelihood_and_anomalies(run, tmp_path):
    run_dir, _ = run
    noise = tmp_path / "noise.npz"
    rng = np.random.default_rng(0)
    np.savez(noise, x_train=rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
             x_test=rng.integers(0, 256, (200, 28, 28), dtype=np.uint8))
    result = in_process("evaluate", run_dir, "--iw-samples", "20",
                        "--anomaly", f"npz:{noise}")
    with open(os.path.join(run_dir, "evaluation.json")) as f:
        scores = json.load(f)
    # The IWAE bound with k = 20 is tighter than the ELBO.
    assert scores["negative_log_likelihood"] < scores["negative_elbo"]
    assert scores["bits_per_dimension"] == pytest.approx(
        scores["negative_log_likelihood"] / (784 * np.log(2)))
    assert 0 <= scores["active_units"] <= 2 and len(scores["kl_per_dimension"]) == 2
    assert sum(scores["kl_per_dimension"]) == pytest.approx(scores["kl_loss"], rel=1e-3)
    assert scores["anomaly"]["auroc"] > 0.99
    assert "AUROC" in result.stdout and "NLL (k=20)" in result.stdout


@pytest.mark.parametrize("command, picture, extra", [
    ("sample", "samples", ["--num", "9", "--seed", "4"]),
    ("reconstruct", "reconstructions", []),
    ("interpolate", "interpolation", ["--steps", "6"]),
    ("latent-map", "latent_map", []),
])
def test_picture_commands_redraw_their_file(run, command, picture, extra):
    run_dir, _ = run
    target = os.path.join(run_dir, f"{picture}.png")
    os.remove(target)
    result = in_process(command, run_dir, *extra)
    assert os.path.exists(target) and target in result.stdout


@pytest.mark.long  # 11 s: every LiteRT variant; the journey and the tables export in make test
def test_export_command_writes_both_formats(run, capsys):
    run_dir, _ = run
    result = keras_vae_command("export", run_dir, "--quantize", "none,dynamic")
    out = os.path.join(run_dir, "export")
    for name in ("vae/1", "vae_float32.tflite", "vae_dynamic.tflite", "vae_metadata.json"):
        assert os.path.exists(os.path.join(out, name)), name
        assert os.path.join(out, name) in result.stdout
    assert "fully_quantize" not in result.stderr and "loader.cc" not in result.stderr
    # A second export is refused before anything is written ...
    # (the refusals in this process: a TensorFlow start each saved)
    assert cli.main(["export", run_dir, "--quantize", "none"]) == 2
    assert "already exist" in capsys.readouterr().err
    assert sorted(os.listdir(os.path.join(out, "vae"))) == ["1"]
    # ... unless it only adds a SavedModel version.
    in_process("export", run_dir, "--formats", "saved_model")
    assert sorted(os.listdir(os.path.join(out, "vae"))) == ["1", "2"]
    # The LiteRT signatures' fixed batch sizes: the default, or chosen.
    assert edge.LiteRTGenerator(os.path.join(out, "vae_float32.tflite")).batch_sizes == [
        1, 16, 64]
    other = os.path.join(run_dir, "export-8")
    in_process("export", run_dir, "--formats", "tflite", "--quantize", "none",
               "--batch-sizes", "8,2", "--out", other)
    assert edge.LiteRTGenerator(os.path.join(other, "vae_float32.tflite")).batch_sizes == [2, 8]
    assert cli.main(["export", run_dir, "--batch-sizes", "8,x", "--out",
                     os.path.join(run_dir, "export-bad")]) == 2
    assert "Invalid --batch-sizes '8,x'" in capsys.readouterr().err


def test_errors_are_clear_and_exit_with_2(run, tmp_path, capsys):
    run_dir, _ = run
    assert cli.main(["train", "--run-dir", run_dir]) == 2
    assert "exists. Pass --overwrite to replace it, --resume" in capsys.readouterr().err
    config = tmp_path / "bad.yaml"
    config.write_text("epochs: 1\nlearning_rat: 0.1\n")
    assert cli.main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "Unknown config key(s): learning_rat. Valid keys: dataset," in err
    assert "learning_rate" in err
    assert cli.main(["train", "--resume", run_dir, "--epochs", "3"]) == 2
    assert "--resume continues a run with its own config.json" in capsys.readouterr().err
    assert cli.main(["train", "--resume", run_dir]) == 2
    assert "has finished (model.keras exists and backup/ is gone)" in capsys.readouterr().err
    assert cli.main(["evaluate", str(tmp_path / "none")]) == 2
    assert "No run at" in capsys.readouterr().err
    assert cli.main(["train", "--run-dir", str(tmp_path / "new"), "--latent-dim", "0"]) == 2
    assert "latent_dim" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "new")  # a bad option leaves nothing behind


def test_overwrite_replaces_only_run_directories(tmp_path, capsys):
    plain = tmp_path / "notes"
    plain.mkdir()
    (plain / "mine.txt").write_text("keep me")
    assert cli.main(["train", "--run-dir", str(plain), "--overwrite"]) == 2
    assert "not a keras-vae run directory" in capsys.readouterr().err
    assert (plain / "mine.txt").read_text() == "keep me"


def test_config_file_and_flags_combine(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("epochs: 1\nlimit: 200\nlatent_dim: 3\nhidden_units: [32]\n")
    run_dir = tmp_path / "r"
    assert cli.main(["train", "--config", str(config), "--latent-dim", "4",
                     "--run-dir", str(run_dir)]) == 0
    with open(run_dir / "config.json") as f:
        resolved = json.load(f)
    assert resolved["latent_dim"] == 4 and resolved["epochs"] == 1
    assert resolved["hidden_units"] == [32]
    # --overwrite replaces a finished run.
    assert cli.main(["train", "--config", str(config), "--run-dir", str(run_dir),
                     "--overwrite", "--latent-dim", "5"]) == 0
    with open(run_dir / "config.json") as f:
        assert json.load(f)["latent_dim"] == 5


@pytest.mark.slow  # with tests/test_faults.py: `make test-faults`
def test_resume_after_sigkill_finishes_the_same_epochs(tmp_path):
    run_dir = tmp_path / "killed"
    args = [sys.executable, "-m", "keras_vae", "train", "--dataset", "mnist",
            "--limit", "6000", "--epochs", "4", "--batch-size", "32",
            "--hidden-units", "64", "--run-dir", str(run_dir)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    history = run_dir / "history.csv"
    deadline = time.time() + 240
    while not (history.exists() and len(history.read_text().splitlines()) >= 2):
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "the first epoch never finished"
        time.sleep(0.05)
    time.sleep(0.5)  # into the second epoch
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    before = history.read_text()
    # model.keras holds the last finished epoch and survives the kill intact.
    assert isinstance(keras.models.load_model(run_dir / "model.keras"), keras_vae.VAE)
    assert (run_dir / "backup").is_dir()
    config_before = (run_dir / "config.json").read_text()

    result = keras_vae_command("train", "--resume", str(run_dir))
    # It continued from the backup instead of starting again.
    assert "Epoch 1/4" not in result.stdout and "Epoch 4/4" in result.stdout
    assert (run_dir / "config.json").read_text() == config_before
    rows = list(csv.DictReader(history.open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    # Rows written before the kill are kept as they were.
    kept = before.splitlines()[1:]
    assert history.read_text().splitlines()[1: 1 + len(kept)] == kept
    assert isinstance(keras.models.load_model(run_dir / "model.keras"), keras_vae.VAE)
    assert str(run_dir / "model.keras") in result.stdout


def test_conditional_training_needs_labels(tmp_path, capsys):
    data_file = tmp_path / "unlabelled.npz"
    np.savez(data_file, x=np.random.default_rng(0).integers(0, 256, (40, 28, 28), dtype=np.uint8))
    assert cli.main(["train", "--dataset", f"npz:{data_file}", "--conditional", "true",
                     "--run-dir", str(tmp_path / "r")]) == 2
    assert "conditional training needs labels" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_every_subcommand_prints_its_help(capsys):
    """`keras-vae train --help` once crashed on a % in an option's help."""


    parser = cli.build_parser()
    commands = next(action for action in parser._actions
                    if isinstance(action, argparse._SubParsersAction)).choices
    assert {"train", "evaluate", "export", "fit-sampler", "sample"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            cli.main([name, "--help"])
        assert exit_info.value.code == 0, name
        out = capsys.readouterr().out
        assert out.startswith("usage: ") and name in out.splitlines()[0], name


@pytest.mark.slow  # about a minute: in `make test-faults`, which .ci/run runs
def test_command_line_trains_evaluates_and_exports_a_ladder(tmp_path):
    """`keras-vae train --latent-dims 4,2 --inference ladder` with IWAE and
    KL warm-up, then `evaluate` (active units per layer) and `export`."""
    run_dir, out = str(tmp_path / "run"), str(tmp_path / "export")

    def command(*args):
        return keras_vae_command(*args, timeout=600).stdout

    command("train", "--dataset", "mnist", "--limit", "300", "--epochs", "2",
            "--batch-size", "100", "--hidden-units", "32", "--latent-dims", "4,2",
            "--inference", "ladder", "--hierarchy-units", "16", "--objective", "iwae",
            "--num-samples", "2", "--kl-warmup-epochs", "2", "--run-dir", run_dir)
    vae = runs.load_vae_file(os.path.join(run_dir, "model.keras"))
    assert type(vae.posterior_family).__name__ == "LadderInference"
    assert vae.latent_dims == (4, 2) and vae.latent_dim == 6
    assert float(vae.kl_weight.value) == pytest.approx(0.5)  # epoch 2 of a 2-epoch warm-up
    printed = command("evaluate", run_dir, "--iw-samples", "10")
    with open(os.path.join(run_dir, "evaluation.json")) as f:
        scores = json.load(f)
    layers = scores["active_units_per_layer"]
    assert len(layers) == 2 and sum(layers) == scores["active_units"]
    assert scores["negative_log_likelihood"] < scores["negative_elbo"]
    assert f"{layers[0]} + {layers[1]}" in printed
    command("export", run_dir, "--out", out, "--formats", "tflite", "--quantize", "none")
    with open(os.path.join(out, "vae_metadata.json")) as f:
        assert json.load(f)["latent_dims"] == [4, 2]
    generator = edge.LiteRTGenerator(os.path.join(out, "vae_float32.tflite"))
    drawn = generator.sample(3)
    assert drawn.shape == (3, 28, 28, 1) and np.all((drawn >= 0) & (drawn <= 1))
    z = np.random.default_rng(0).standard_normal((2, 6)).astype("float32")
    np.testing.assert_allclose(generator.decode(z), np.asarray(vae.decode(z)), atol=1e-5)
