"""Installed as users install it: MNIST found outside a checkout, and the
wheel and sdist built, checked and run from a fresh virtual environment."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_vae.data import mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write_keras_cache(home, n=50):
    """A Keras-style `mnist.npz` made from the repository's copy."""
    (x_train, y_train), (x_test, y_test) = mnist.load_mnist(
        os.path.join(ROOT, "data", "mnist"))
    target = os.path.join(home, "datasets")
    os.makedirs(target, exist_ok=True)
    np.savez(os.path.join(target, "mnist.npz"), x_train=x_train[:n, ..., 0],
             y_train=y_train[:n], x_test=x_test[:n, ..., 0], y_test=y_test[:n])
    return x_train[:n], y_test[:n]


@pytest.fixture
def outside_a_checkout(monkeypatch, tmp_path):
    """As an installed package sees it: no repository copy, no env variable."""
    monkeypatch.setattr(mnist, "DEFAULT_MNIST_DIR", str(tmp_path / "site-packages-data"))
    monkeypatch.delenv("KERAS_VAE_MNIST_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    return tmp_path / "keras-home"


def test_the_keras_cache_is_used_outside_a_checkout(outside_a_checkout):
    want_x, want_y = _write_keras_cache(str(outside_a_checkout))
    (x_train, _), (_, y_test) = mnist.load_mnist(download=False)
    assert x_train.shape == (50, 28, 28, 1) and x_train.dtype == np.uint8
    np.testing.assert_array_equal(x_train, want_x)
    np.testing.assert_array_equal(y_test, want_y)


def test_a_download_through_keras_is_tried_then_every_place_is_named(
        outside_a_checkout, monkeypatch):
    calls = []

    def offline():
        calls.append(1)
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(FileNotFoundError) as error:
        mnist.load_mnist()
    message = str(error.value)
    assert calls == [1]
    for place in ("KERAS_VAE_MNIST_DIR", mnist.DEFAULT_MNIST_DIR, mnist.keras_cache_path(),
                  "keras.datasets.mnist.load_data()", "Temporary failure in name resolution"):
        assert place in message, place
    assert "Fix: set KERAS_VAE_MNIST_DIR" in message


def test_the_environment_variable_wins_and_a_wrong_one_is_not_hidden(
        outside_a_checkout, monkeypatch, tmp_path):
    _write_keras_cache(str(outside_a_checkout))
    monkeypatch.setenv("KERAS_VAE_MNIST_DIR", str(tmp_path / "typo"))
    with pytest.raises(FileNotFoundError, match="typo"):
        mnist.load_mnist()
    monkeypatch.setenv("KERAS_VAE_MNIST_DIR", os.path.join(ROOT, "data", "mnist"))
    (x_train, _), _ = mnist.load_mnist()
    assert x_train.shape == (60000, 28, 28, 1)


def _run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, timeout=1200, **kwargs)
    assert result.returncode == 0, (args, result.stdout[-3000:], result.stderr[-3000:])
    return result


@pytest.mark.slow
def test_the_wheel_installs_and_runs_outside_the_repository(tmp_path):
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel",
          "--outdir", str(dist), ROOT])
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1
    check = _run([sys.executable, "-m", "twine", "check", "--strict",
                  str(wheels[0]), str(sdists[0])])
    assert check.stdout.count("PASSED") == 2

    venv = tmp_path / "fresh"
    _run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    _run([python, "-m", "pip", "install", "--quiet", str(wheels[0])])

    home = tmp_path / "home"
    _write_keras_cache(str(home / ".keras"), n=300)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(home),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    # The README's quickstart, one epoch, from a directory outside the repository.
    quickstart = textwrap.dedent("""
        import keras, keras_vae
        assert "site-packages" in keras_vae.__file__, keras_vae.__file__
        (x_train, _), (x_test, _) = keras_vae.data.load_mnist()
        x_train, x_test = x_train / 255.0, x_test / 255.0
        vae = keras_vae.VAE(input_shape=(28, 28, 1), latent_dim=16,
                            encoder="mlp", decoder="mlp", likelihood="bernoulli")
        vae.compile(optimizer="adam")
        history = vae.fit(x_train, epochs=1, batch_size=128, validation_data=(x_test,))
        images = vae.sample(16)
        assert images.shape == (16, 28, 28, 1)
        vae.save("vae.keras"); again = keras.models.load_model("vae.keras")
        print("quickstart ok", len(x_train))
    """)
    result = _run([python, "-c", quickstart], cwd=work, env=env)
    assert "quickstart ok 300" in result.stdout
    result = _run([str(venv / "bin" / "keras-vae"), "train", "--epochs", "1",
                   "--run-dir", "run", "--hidden-units", "32", "--latent-dim", "2"],
                  cwd=work, env=env)
    assert (work / "run" / "model.keras").exists()
    assert (work / "run" / "samples.png").exists()
    # The web page's files are package data: the installed package exports it.
    _run([str(venv / "bin" / "keras-vae"), "export", "run", "--formats", "web"],
         cwd=work, env=env)
    page = work / "run" / "export" / "web"
    assert sorted(p.name for p in page.iterdir()) == [
        "app.js", "index.html", "metadata.json", "style.css", "vae_float32.tflite",
        "vae_int8.tflite", "vae_metadata.json"]
    html = (page / "index.html").read_text()
    assert "https://cdn.jsdelivr.net/npm/@litertjs/core@2.5.3/dist/index.js" in html
    shipped = os.path.join(ROOT, "keras_vae", "export", "web_page", "app.js")
    with open(shipped) as f:
        assert (page / "app.js").read_text() == f.read()
