"""Training to a time budget and the cosine learning rate (TimeBudget,
`keras-vae train --minutes N --lr-schedule cosine`)."""

import csv
import math
import os

import keras
import numpy as np
import pytest
from conftest import small_vae

import keras_vae
from keras_vae import callbacks, cli


class _Rates(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.rates = getattr(self, "rates", [])
        self.rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


def test_cosine_over_the_epochs(small_data):
    vae = small_vae()
    vae.compile(optimizer=keras.optimizers.Adam(0.01))
    budget, rates = keras_vae.callbacks.TimeBudget(cosine=True, floor=0.1), _Rates()
    vae.fit(small_data, epochs=5, batch_size=32, verbose=0, callbacks=[budget, rates])
    want = [0.01 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * e / 5))) for e in range(5)]
    np.testing.assert_allclose(rates.rates, want, rtol=1e-5)
    assert budget.epochs == 5


def test_a_time_budget_stops_training(small_data):
    vae = small_vae()
    vae.compile(optimizer="adam")
    budget = keras_vae.callbacks.TimeBudget(minutes=1e-6)
    history = vae.fit(small_data, epochs=50, batch_size=32, verbose=0, callbacks=[budget])
    assert len(history.history["loss"]) == budget.epochs == 1
    with pytest.raises(ValueError, match="Expected minutes > 0"):
        keras_vae.callbacks.TimeBudget(minutes=0)


def test_minutes_and_cosine_from_the_command_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", "--limit", "128", "--epochs", "40", "--hidden-units", "8",
                     "--latent-dim", "2", "--batch-size", "64", "--minutes", "0.00001",
                     "--lr-schedule", "cosine", "--clipnorm", "2.5",
                     "--run-dir", str(run)]) == 0
    assert keras.saving.load_model(run / "model.keras").optimizer.global_clipnorm == 2.5
    rows = list(csv.DictReader(open(run / "history.csv")))
    assert len(rows) == 1  # the budget ended training after its first epoch
    assert os.path.exists(run / "model.keras")
    capsys.readouterr()
    assert cli.main(["train", "--lr-schedule", "step", "--run-dir", str(tmp_path / "x")]) == 2
    assert "Unknown lr_schedule: 'step'" in capsys.readouterr().err
    assert cli.main(["train", "--minutes", "0", "--run-dir", str(tmp_path / "x")]) == 2
    assert "Invalid value for minutes: 0.0" in capsys.readouterr().err


def test_clipnorm_scales_a_large_gradient_down_to_that_global_norm():
    from keras_vae.runs import build, config

    def step(clipnorm, gradients):
        weights = [keras.Variable(np.zeros(3, "float32")), keras.Variable(np.zeros(1, "float32"))]
        settings = {**config.defaults(), "optimizer": "sgd", "learning_rate": 0.5,
                    "clipnorm": clipnorm}
        build.optimizer(settings).apply_gradients(
            zip([np.asarray(g, "float32") for g in gradients], weights, strict=True))
        return [np.asarray(w) for w in weights]

    large = [[3.0, 0.0, 0.0], [4.0]]  # global norm 5
    # Scaled to norm 1 as a whole (each variable clipped alone would give
    # [-0.5, 0, 0] and [-0.5]), then a step of 0.5.
    for got, want in zip(step(1.0, large), [[-0.3, 0.0, 0.0], [-0.4]], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    for got, want in zip(step(None, large), [[-1.5, 0.0, 0.0], [-2.0]], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    small = [[0.3, 0.0, 0.0], [0.4]]  # norm 0.5: below the bound, unchanged
    for got, want in zip(step(1.0, small), [[-0.15, 0.0, 0.0], [-0.2]], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_the_cosine_follows_the_time_budget():
    """Over minutes: lr0 · (0.05 + 0.95 · ½(1 + cos(π · elapsed/budget))).
    (Moved from tests/test_benchmarks.py with the callback it tested.)"""
    import time

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="mse")
    budget = keras_vae.callbacks.TimeBudget(minutes=1.0, cosine=True)
    budget.set_model(model)
    budget.on_train_begin()
    for fraction, expected in [(0.0, 1.0), (0.25, 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi / 4))),
                               (0.5, 0.525), (1.0, 0.05), (3.0, 0.05)]:
        budget.start = time.time() - 60 * fraction
        budget.on_epoch_begin(0)
        rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        assert abs(rate - 2e-3 * expected) < 2e-3 * 0.01
    budget.on_epoch_end(4)
    assert model.stop_training and budget.epochs == 5  # past the budget: stop


# === Moved here from the milestone modules (test_beyond, test_findings, test_mathematics) ===
def test_cyclical_annealing_schedule():
    schedule = callbacks.CyclicalKLAnnealing(cycle_epochs=4, target=2.0, ratio=0.5)
    assert [schedule.weight_at(e) for e in range(8)] == [0, 1, 2, 2, 0, 1, 2, 2]
    with pytest.raises(ValueError, match=r"ratio in \(0, 1\]"):
        callbacks.CyclicalKLAnnealing(4, ratio=0)

