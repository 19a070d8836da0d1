"""Scale-out and faults: multi-worker training, precision, NaN, corrupt files."""

import csv
import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_vae
from reference import gaussian_kl

import keras_vae
from keras_vae import callbacks, distribute, runs
from keras_vae.runs import config as config_lib

ARGS = ["--dataset", "mnist", "--limit", "512", "--epochs", "2", "--batch-size", "64",
        "--hidden-units", "32", "--seed", "0", "--binarize", "static"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _history(run_dir):
    with open(os.path.join(run_dir, "history.csv")) as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


# === Strategies ===
@pytest.mark.slow  # two worker processes for a minute: `make test-faults` (and .ci/run)
def test_multi_worker_training_on_localhost_matches_one_process(tmp_path):
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    run_dir = str(tmp_path / "multi")
    workers = []
    try:
        for index in range(2):
            env = dict(os.environ, TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}))
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "keras_vae", "train", *ARGS, "--strategy",
                 "multi_worker", "--run-dir", run_dir],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        outputs = [worker.communicate(timeout=240) for worker in workers]
    finally:  # never leave a hung worker behind
        for worker in workers:
            worker.kill()
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-3000:]
    # The chief wrote the run directory; worker 1 wrote only its own folder.
    assert os.path.exists(os.path.join(run_dir, "samples.png"))
    other = runs.worker_dir(run_dir, _FakeStrategy(task_id=1))
    assert os.path.join(other, "model.keras") in outputs[1][0]
    assert os.path.join(run_dir, "model.keras") not in outputs[1][0]
    chief = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    second = keras.models.load_model(os.path.join(other, "model.keras"))
    for a, b in zip(chief.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # all-reduced: identical weights

    single_dir = str(tmp_path / "single")
    subprocess.run([sys.executable, "-m", "keras_vae", "train", *ARGS, "--strategy",
                    "default", "--run-dir", single_dir], capture_output=True, check=True,
                   timeout=240)
    # Same global batches; the two workers' noise slots differ from one
    # process's, so the losses agree to 0.5%, not exactly.
    for multi, single in zip(_history(run_dir), _history(single_dir), strict=True):
        for key in ("loss", "reconstruction_loss", "val_loss"):
            assert multi[key] == pytest.approx(single[key], rel=5e-3), key


@pytest.mark.slow  # two worker processes: `make test-faults` (and .ci/run)
def test_two_workers_read_disjoint_files_of_a_folder_and_end_identical(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(90):  # 90 files, about 81 for training: uneven shares
        path = tmp_path / "images" / f"class{i % 3}" / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(path)
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    run_dir = str(tmp_path / "multi")
    args = ["--dataset", f"images:{tmp_path / 'images'}", "--epochs", "2", "--batch-size",
            "16", "--hidden-units", "16", "--latent-dim", "2", "--binarize", "none",
            "--strategy", "multi_worker", "--run-dir", run_dir]
    workers = []
    try:
        for index in range(2):
            env = dict(os.environ, TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}))
            workers.append(subprocess.Popen([sys.executable, "-m", "keras_vae", "train", *args],
                                            env=env, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True))
        outputs = [worker.communicate(timeout=240) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-3000:]
    other = runs.worker_dir(run_dir, _FakeStrategy(task_id=1))
    read = []
    for folder in (run_dir, other):
        with open(os.path.join(folder, "files_read.txt")) as f:
            rows = [line.split("\t") for line in f.read().splitlines()[1:]]
        read.append({path for path, split in rows if split.endswith(" train")})
    assert read[0] and read[1] and not read[0] & read[1]  # disjoint files
    splits = keras_vae.data.load(f"images:{tmp_path / 'images'}")
    assert read[0] | read[1] == set(splits.train.files)  # all of them
    chief = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    second = keras.models.load_model(os.path.join(other, "model.keras"))
    for a, b in zip(chief.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # all-reduced: identical weights
    assert abs(len(read[0]) - len(read[1])) <= 1  # every other file
    assert len(_history(run_dir)) == 2  # both epochs, neither worker waiting on the other


class _FakeStrategy:
    def __init__(self, task_id):
        self.cluster_resolver = type("Resolver", (), {"task_id": task_id})()


def test_strategy_choice():
    assert distribute.get_strategy("auto") is tf.distribute.get_strategy()  # CPU only
    assert distribute.get_strategy("default") is tf.distribute.get_strategy()
    assert isinstance(distribute.get_strategy("mirrored"), tf.distribute.MirroredStrategy)
    single = distribute.get_strategy("multi_worker")  # no TF_CONFIG: one worker
    assert single.num_replicas_in_sync == 1 and distribute.is_chief(single)
    assert not distribute.in_multi_worker_mode(single)
    with pytest.raises(ValueError, match=r"Unknown strategy: 'gpu'. Expected one of \['auto', 'default', 'mirrored', 'multi_worker', 'tpu'\]"):
        distribute.get_strategy("gpu")


def test_tpu_without_a_tpu_says_so(monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(ValueError, match=r"No TPU found for strategy='tpu'.*Set TPU_NAME"):
        distribute.get_strategy("tpu")


def test_static_shapes_for_accelerators(tmp_path):
    config = config_lib.resolve({"limit": 300, "batch_size": 64, "drop_remainder": True})
    splits = runs.load_splits(config)
    vae = runs.build_model(config, splits.image_shape)
    dataset = runs.build.dataset(config, vae, splits.train, training=True,
                                 drop_remainder=config["drop_remainder"])
    assert dataset.element_spec.shape.as_list() == [64, 28, 28, 1]
    assert sum(1 for _ in dataset) == 300 // 64
    # The global batch is split over replicas: 2 replicas get 32 each.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))
    assert [t.shape[0] for t in strategy.experimental_local_results(batch)] == [32, 32]


# === Precision ===
@pytest.mark.parametrize("policy, compute", [("mixed_float16", "float16"),
                                             ("mixed_bfloat16", "bfloat16")])
def test_mixed_precision_keeps_distributions_in_float32(small_data, policy, compute):
    keras.mixed_precision.set_global_policy(policy)
    try:
        vae = small_vae()
        vae.compile(optimizer="adam")
        history = vae.fit(small_data, epochs=2, batch_size=16, verbose=0).history
        assert np.isfinite(history["loss"]).all()
        assert vae.encoder(small_data[:2]).dtype == compute
        assert all(v.dtype == "float32" for v in vae.trainable_variables)
        assert vae.kl_weight.dtype == "float32"
        posterior = vae.posterior(small_data[:2])
        assert posterior.dtype == tf.float32
        assert vae.likelihood_distribution(posterior.sample()).dtype == tf.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


# === Faults ===
class _InjectNaN(keras.callbacks.Callback):
    """Turn the encoder's output bias into NaN at epoch 2, step 3.

    (The output layer, since a ReLU may turn NaN into 0 on some CPUs.)
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.epoch == 1 and batch == 2:
            bias = self.model.encoder.layers[-1].bias
            bias.assign(np.full(bias.shape, np.nan, "float32"))


def test_nan_stops_training_and_keeps_the_last_good_model(tmp_path):
    config = config_lib.resolve({"limit": 600, "epochs": 3, "batch_size": 100,
                                 "hidden_units": [32]})
    run_dir = str(tmp_path / "nan")
    with pytest.raises(callbacks.NonFiniteLossError, match=r"epoch 2, step 3: the loss became nan.*learning rate"):
        runs.train(config, run_dir, verbose=0, callbacks=[_InjectNaN()])
    model = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert [int(row["epoch"]) for row in _history(run_dir)] == [0]
    assert os.path.isdir(os.path.join(run_dir, "backup"))  # resumable


def test_fit_restores_the_weights_of_the_last_good_epoch(small_data):
    vae = small_vae()
    vae.compile(optimizer="adam")
    with pytest.raises(callbacks.NonFiniteLossError, match="epoch 2, step 3"):
        vae.fit(small_data, epochs=3, batch_size=16, verbose=0, callbacks=[_InjectNaN()])
    assert all(np.isfinite(w).all() for w in vae.get_weights())


def test_extreme_learning_rate_never_leaves_nan_weights(mnist):
    (x, _), _ = mnist
    vae = keras_vae.VAE(input_shape=(28, 28, 1), latent_dim=8, hidden_units=(64,))
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate=1e4))
    try:
        history = vae.fit(x[:1000], epochs=2, batch_size=100, verbose=0).history
        assert np.isfinite(history["loss"]).all()
    except callbacks.NonFiniteLossError as error:
        assert "learning rate" in str(error)
    assert all(np.isfinite(w).all() for w in vae.get_weights())


def test_scales_are_bounded_for_extreme_encoder_outputs(small_data):
    vae = small_vae()
    head = vae.encoder.layers[-1]
    kernel, bias = head.get_weights()
    bias[:3], bias[3:] = 1e4, -1e4  # huge loc, and a scale pushed to 0
    head.set_weights([np.zeros_like(kernel), bias])
    loc, scale = (np.asarray(t) for t in vae.encode(small_data[:4]))
    np.testing.assert_allclose(scale, 1e-4, rtol=1e-3)  # the floor, not 0
    vae.compile(optimizer="adam")
    logs = vae.evaluate(small_data, verbose=0, return_dict=True)
    want = gaussian_kl(loc, scale).mean()
    assert np.isfinite(logs["kl_loss"]) and logs["kl_loss"] == pytest.approx(want, rel=1e-4)


def test_truncated_model_file_is_a_clear_error(tmp_path, small_data):
    vae = small_vae()
    vae.save(tmp_path / "good.keras")
    data = (tmp_path / "good.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut.keras could not be read as a Keras model"):
        runs.load_vae_file(str(tmp_path / "cut.keras"))


def test_corrupt_backup_is_named_on_resume(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "backup").mkdir(parents=True)
    config = config_lib.resolve({"limit": 200, "epochs": 1})
    (run_dir / "config.json").write_text(json.dumps(config))
    weights = run_dir / "backup" / "latest.weights.h5"
    weights.write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    with pytest.raises(ValueError, match=rf"The backup {weights} is truncated or corrupt"):
        runs.train(None, str(run_dir), resume=True)

