"""The example that `make demo` runs, end to end in a subprocess."""

import os
import re
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.long  # minutes of training or a resumed run: make test-long
def test_train_mnist_example_writes_model_and_samples(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "train_mnist.py"),
         "--epochs", "1", "--limit", "2000", "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=True,
    )
    match = re.search(r"Test negative ELBO: ([\d.]+) nats", result.stdout)
    assert match, result.stdout[-2000:]
    assert 100 < float(match.group(1)) < 543  # better than an untrained model
    picture = matplotlib.image.imread(out / "samples.png")
    assert np.std(picture[..., :3]) > 0.05  # real images, not a blank canvas
    assert (out / "vae.keras").stat().st_size > 100_000
