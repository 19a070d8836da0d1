"""The README's Python code runs as written (one epoch, on 512 images)."""

import pathlib
import re

import numpy as np
import tensorflow as tf

import keras_vae

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch, strategy):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 4, "the README's Python examples moved"
    (x_train, y_train), (x_test, y_test) = keras_vae.data.load_mnist()
    small = ((x_train[:512], y_train[:512]), (x_test[:256], y_test[:256]))
    monkeypatch.setattr(keras_vae.data, "load_mnist", lambda *a, **k: small)
    monkeypatch.chdir(tmp_path)
    # The session's MirroredStrategy: a second one on the same devices would
    # share collective keys with it (see conftest.py).
    monkeypatch.setattr(tf.distribute, "MirroredStrategy", lambda *a, **k: strategy)
    namespace = {"tf": tf, "y_train": y_train[:512]}
    for block in blocks:
        exec(compile(block.replace("epochs=10", "epochs=1"), str(README), "exec"), namespace)
    assert namespace["images"].shape == (16, 28, 28, 1)
    assert np.asarray(namespace["sevens"]).shape == (16, 28, 28, 1)
    assert (tmp_path / "vae.keras").exists()
