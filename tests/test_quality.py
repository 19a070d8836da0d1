"""Sample quality (keras_vae.evaluation.quality): the Fréchet distance and precision /
recall against independent computations, and the metric's sanity on MNIST:
real against real is near zero, noise and an untrained model are far, a
trained model lies in between."""

import keras
import numpy as np
import pytest

import keras_vae
from keras_vae.evaluation import quality

RNG = np.random.default_rng(11)


def test_frechet_distance_of_a_scaled_and_shifted_copy():
    # b = c·a + s has Σ_b = c² Σ_a, which commutes with Σ_a: the distance is
    # ‖μ_a − μ_b‖² + (1 − c)² Tr Σ_a exactly, on the sample statistics too.
    a = RNG.normal(size=(500, 6)) @ RNG.normal(size=(6, 6))
    for c, shift in ((1.0, 0.0), (1.0, 0.7), (0.5, 0.0), (2.0, -1.0)):
        b = c * a + shift
        expected = (np.sum((a.mean(0) - b.mean(0)) ** 2)
                    + (1 - c) ** 2 * np.trace(np.cov(a, rowvar=False)))
        assert quality.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6, abs=1e-8)


def test_frechet_distance_of_gaussians_with_diagonal_covariances():
    mean_a, mean_b = np.zeros(3), np.array([1.0, -2.0, 0.5])
    sd_a, sd_b = np.array([1.0, 2.0, 0.5]), np.array([3.0, 1.0, 0.5])
    a = mean_a + sd_a * RNG.normal(size=(200000, 3))
    b = mean_b + sd_b * RNG.normal(size=(200000, 3))
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum((sd_a - sd_b) ** 2)
    assert quality.frechet_distance(a, b) == pytest.approx(expected, abs=0.05)


def test_precision_and_recall_against_a_direct_count():
    real = RNG.normal(size=(60, 4))
    generated = np.concatenate([real[:20] + 0.01, RNG.normal(20.0, 1.0, size=(20, 4))])

    def kth(points, k=3):
        return np.array([sorted(np.linalg.norm(points - p, axis=1))[k] for p in points])

    def inside(points, centres, radii):
        return np.mean([any(np.linalg.norm(centres - p, axis=1) <= radii) for p in points])

    want = (inside(generated, real, kth(real)), inside(real, generated, kth(generated)))
    assert quality.precision_recall(real, generated) == pytest.approx(want)
    assert want[0] == pytest.approx(0.5)  # the far half is outside every real ball
    assert quality.precision_recall(real, real) == (1.0, 1.0)


@pytest.fixture(scope="module")
def features():
    return quality.Features()


def test_the_committed_classifier_is_accurate(features, mnist):
    assert quality.classifier_card()["test_accuracy"] >= 0.99
    _, (x_test, y_test) = mnist
    assert features.accuracy(x_test.reshape(-1, 28, 28, 1), y_test) >= 0.98


@pytest.mark.long  # minutes of training or a resumed run: make test-long
def test_the_metric_orders_real_trained_untrained_and_noise(features):
    (x_train, _), (x_test, _) = keras_vae.data.load_mnist()
    x_train = x_train.reshape(-1, 28, 28, 1) / 255.0
    real_train, real_test = x_train[:2000], x_test[:2000].reshape(-1, 28, 28, 1) / 255.0
    keras.utils.set_random_seed(0)
    untrained = keras_vae.VAE((28, 28, 1), latent_dim=8, hidden_units=(128,), seed=0)
    trained = keras_vae.VAE((28, 28, 1), latent_dim=8, hidden_units=(128,), seed=0)
    trained.compile(optimizer="adam")
    trained.fit(x_train[:20000], epochs=3, batch_size=100, verbose=0)
    scores = {
        "real": quality.report(features, real_test, real_train),
        "trained": quality.report(features, real_test, np.asarray(trained.sample(2000, seed=1))),
        "untrained": quality.report(features, real_test,
                                    np.asarray(untrained.sample(2000, seed=1))),
        "noise": quality.report(features, real_test, RNG.random((2000, 28, 28, 1))),
    }
    distance = {name: s["frechet_distance"] for name, s in scores.items()}
    assert distance["real"] < 0.1 * distance["trained"], distance
    assert distance["trained"] < 0.8 * distance["untrained"], distance
    assert distance["trained"] < 0.8 * distance["noise"], distance
    # (Precision is near 1 for every generated set here: blurry samples map to
    # a small region of feature space that the balls of real outliers cover;
    # recall shows the difference. The Fréchet distance orders them.)
    assert scores["real"]["precision"] > 0.8 and scores["real"]["recall"] > 0.8, scores
    assert scores["noise"]["recall"] < 0.05, scores


def test_evaluation_sample_quality_is_the_report_of_the_models_samples(features):
    _, (x_test, _) = keras_vae.data.load_mnist()
    real = x_test[:300].reshape(-1, 28, 28, 1) / 255.0
    vae = keras_vae.VAE((28, 28, 1), latent_dim=2, hidden_units=(16,), seed=0)
    got = keras_vae.evaluation.sample_quality(vae, real, seed=4, features=features)
    want = quality.report(features, real, np.asarray(vae.sample(300, seed=4)))
    assert got == pytest.approx(want)
    assert keras_vae.evaluation.frechet_distance is quality.frechet_distance
