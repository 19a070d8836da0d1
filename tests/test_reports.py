"""keras-vae evaluate's report: the real negative ELBO at weight one, and the
training objective apart."""

import json
import math
import os

import pytest

import keras_vae
from keras_vae import runs


@pytest.fixture(scope="module")
def weighted_run(tmp_path_factory):
    config = keras_vae.runs.config.resolve({
        "limit": 300, "epochs": 1, "batch_size": 100, "hidden_units": [16],
        "latent_dim": 2, "kl_weight": 0.2, "likelihood": "gaussian",
        "binarize": "none"})
    run_dir = str(tmp_path_factory.mktemp("weighted") / "run")
    runs.train(config, run_dir, verbose=0)
    return run_dir


def test_evaluate_reports_the_negative_elbo_at_weight_one(weighted_run):
    scores = runs.evaluate(weighted_run, verbose=0, iw_samples=2)
    rec, kl = scores["reconstruction_loss"], scores["kl_loss"]
    assert scores["negative_elbo"] == pytest.approx(rec + kl, rel=1e-6)
    # The objective that fit minimised weighs the KL by 0.2, named as such.
    assert scores["training_objective"] == pytest.approx(rec + 0.2 * kl, rel=1e-4)
    assert scores["training_objective_name"] == "negative ELBO with KL weight 0.2"
    assert scores["kl_weight"] == pytest.approx(0.2)
    with open(os.path.join(weighted_run, "evaluation.json")) as f:
        assert json.load(f)["negative_elbo"] == pytest.approx(rec + kl, rel=1e-6)
    # A density on [0, 1] data from 8-bit levels: + D ln 256, never negative.
    d = 28 * 28
    want = (scores["negative_log_likelihood"] + d * math.log(256)) / (d * math.log(2))
    assert scores["bits_per_dimension"] == pytest.approx(want, rel=1e-9)
    assert scores["bits_per_dimension"] > 0
    assert "ln 256" in scores["bits_per_dimension_convention"]

