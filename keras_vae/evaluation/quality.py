"""Sample quality for MNIST-like images: a Fréchet distance and precision /
recall in the features of a small MNIST classifier.

The classifier (`classifier_network`, trained by
benchmarks/train_mnist_classifier.py, weights in keras_vae/assets/) plays the
part Inception plays in the FID: its 64 penultimate activations are the
features. Values are comparable only between runs that use these features.

Mathematical details:

    Fréchet distance between N(μ_a, Σ_a) and N(μ_b, Σ_b) fitted to two sets
    of features (Heusel et al., 2017):
        ‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2}),
    where Tr (Σ_a Σ_b)^{1/2} = Σ_i sqrt(λ_i) over the eigenvalues of the
    symmetric Σ_a^{1/2} Σ_b Σ_a^{1/2}.

    Precision and recall (Kynkäänniemi et al., 2019): each real feature
    vector gets a ball reaching its k-th nearest real neighbour; precision
    is the share of generated vectors inside some real ball, recall the
    share of real vectors inside some generated ball (balls from the
    generated set's k-th neighbours).
"""

import json
import os

import keras
import numpy as np

WEIGHTS = "mnist_classifier.weights.h5"
CARD = "mnist_classifier.json"
ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")


def classifier_network():
    """The classifier: conv 32 → pool → conv 64 → pool → dense 64 → 10, with
    dropout in training."""
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(32, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(64, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Dropout(0.25)(keras.layers.Flatten()(x))
    features = keras.layers.Dense(64, activation="relu", name="features")(x)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Dropout(0.25)(features))
    return keras.Model(inputs, outputs, name="mnist_classifier")


def classifier_card():
    """What the committed classifier is: its test accuracy and how it was made."""
    with open(os.path.join(ASSETS, CARD)) as f:
        return json.load(f)


class Features:
    """The committed classifier's penultimate features of 28×28 images."""

    def __init__(self, weights=None):
        network = classifier_network()
        network.load_weights(weights or os.path.join(ASSETS, WEIGHTS))
        self.network = network
        self.extractor = keras.Model(network.inputs, network.get_layer("features").output)

    def __call__(self, images, batch_size=500):
        images = np.asarray(images, "float32")
        if images.shape[1:] != (28, 28, 1):
            raise ValueError(
                f"The sample-quality features take 28x28 grey images; received images of "
                f"shape {images.shape[1:]}.")
        return np.asarray(self.extractor.predict(np.clip(images, 0.0, 1.0),
                                                 batch_size=batch_size, verbose=0), "float64")

    def accuracy(self, images, labels):
        predicted = np.argmax(self.network.predict(np.asarray(images, "float32"), verbose=0), -1)
        return float(np.mean(predicted == np.asarray(labels)))


def frechet_distance(features_a, features_b):
    """The Fréchet distance between Gaussians fitted to two feature sets."""
    a, b = np.asarray(features_a, "float64"), np.asarray(features_b, "float64")
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _psd_sqrt(cov_a)
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sum(np.sqrt(np.clip(middle, 0.0, None)))
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b)
                 - 2.0 * trace_root)


def _psd_sqrt(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def precision_recall(real, generated, k=3):
    """`(precision, recall)` of generated features against real ones."""
    real, generated = np.asarray(real, "float64"), np.asarray(generated, "float64")
    real_radii = _kth_neighbour_distance(real, k)
    generated_radii = _kth_neighbour_distance(generated, k)
    precision = np.mean(np.any(_distances(generated, real) <= real_radii[None], axis=1))
    recall = np.mean(np.any(_distances(real, generated) <= generated_radii[None], axis=1))
    return float(precision), float(recall)


def _distances(a, b):
    squared = (a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2.0 * a @ b.T
    return np.sqrt(np.clip(squared, 0.0, None))


def _kth_neighbour_distance(points, k):
    distances = _distances(points, points)
    return np.sort(distances, axis=1)[:, k]  # column 0 is the point itself


def report(features, real_images, generated_images, k=3):
    """`{"frechet_distance", "precision", "recall"}` of generated images
    against real ones (the same number of each is fairest)."""
    real, generated = features(real_images), features(generated_images)
    precision, recall = precision_recall(real, generated, k)
    return {"frechet_distance": frechet_distance(real, generated),
            "precision": precision, "recall": recall}
