"""keras_vae.ConditionalVAE: samples of the asked class, label checks,
reloading, and the VampPrior refused."""


import keras
import numpy as np
import pytest

import keras_vae


@pytest.fixture(scope="module")
def mnist_6000():
    (x, y), _ = keras_vae.data.load_mnist()
    return x[:6000].astype("float32") / 255, y[:6000].astype("int32")


@pytest.mark.long  # minutes of training or a resumed run: make test-long
def test_conditional_samples_are_classified_as_their_label(mnist_6000):
    x, y = mnist_6000
    keras.utils.set_random_seed(0)
    classifier = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                   keras.layers.Dense(128, activation="relu"),
                                   keras.layers.Dense(10)])
    classifier.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), metrics=["accuracy"])
    classifier.fit(x, y, epochs=3, batch_size=100, verbose=0)
    # A small z leaves the class to the label (measured: 95% after 10 epochs).
    cvae = keras_vae.ConditionalVAE(input_shape=(28, 28, 1), num_classes=10, latent_dim=2,
                                    hidden_units=(256,), seed=0)
    cvae.compile(optimizer="adam")
    cvae.fit({"images": x, "labels": y}, epochs=10, batch_size=100, verbose=0)
    labels = np.repeat(np.arange(10), 30)
    samples = np.asarray(cvae.sample(len(labels), labels=labels, seed=0))
    predicted = np.argmax(classifier.predict(samples, verbose=0), axis=1)
    accuracy = np.mean(predicted == labels)
    assert accuracy > 0.7, accuracy  # chance is 0.1
    sevens = np.argmax(classifier.predict(np.asarray(cvae.sample(30, labels=7)), verbose=0), 1)
    assert np.mean(sevens == 7) > 0.6


def test_conditional_model_checks_labels_and_reloads(tmp_path, small_data):
    cvae = keras_vae.ConditionalVAE(input_shape=(6, 6, 1), num_classes=3, latent_dim=2,
                                    hidden_units=(8,))
    assert cvae.encoder.input_shape == (None, 6, 6, 4)  # image + one-hot channels
    assert cvae.decoder.input_shape == (None, 5)  # z + one-hot
    cvae.compile(optimizer="adam")
    labels = np.arange(64) % 3
    cvae.fit({"images": small_data, "labels": labels}, epochs=1, batch_size=16, verbose=0)
    with pytest.raises(ValueError, match=r"integer labels in \[0, 3\). Received labels from 0 to 5"):
        cvae.fit({"images": small_data, "labels": np.arange(64) % 6}, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="needs labels"):
        cvae.sample(4)
    cvae.save(tmp_path / "c.keras")
    again = keras.models.load_model(tmp_path / "c.keras")
    assert isinstance(again, keras_vae.ConditionalVAE) and again.num_classes == 3
    np.testing.assert_allclose(again.sample(4, labels=[0, 1, 2, 1], seed=2),
                               cvae.sample(4, labels=[0, 1, 2, 1], seed=2), atol=1e-6)
    # The same z decodes differently for different labels.
    z = np.zeros((1, 2), "float32")
    assert not np.allclose(cvae.decode(z, labels=[0]), cvae.decode(z, labels=[2]))


def test_a_conditional_vae_with_the_vamp_prior_is_refused_at_construction():
    with pytest.raises(ValueError, match="a ConditionalVAE.*prior='vamp'|prior='vamp'.*"
                       "ConditionalVAE"):
        keras_vae.ConditionalVAE(input_shape=(6, 6, 1), num_classes=3, prior="vamp",
                                 latent_dim=2, hidden_units=(8,))

