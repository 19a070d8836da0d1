"""The speed benchmark's quick mode runs and reports every implementation."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_speed_benchmark_quick_mode(tmp_path):
    out = tmp_path / "speed.md"
    subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "speed_benchmark.py"),
                    "--quick", "--out", str(out)], check=True, capture_output=True,
                   timeout=600)
    text = out.read_text()
    assert "python benchmarks/speed_benchmark.py --quick" in text
    rows = [line.split("|") for line in text.splitlines()
            if line.startswith("| ") and "---" not in line][1:]
    assert [row[1].strip() for row in rows] == [
        "keras_vae fit", "keras_vae fit, XLA",
        "keras_vae fit, tf.data + steps_per_execution=10 + XLA",
        "Keras example (custom train_step)", "PyTorch (CPU)"]
    for row in rows:
        assert float(row[2]) > 100  # images per second
        assert 50 < float(row[5]) < 600  # a trained loss in nats
    assert rows[3][3].strip() == "1.00×"  # the baseline against itself


def test_likelihood_benchmark_quick_mode(tmp_path):
    out = tmp_path / "likelihood.md"
    subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "likelihood_benchmark.py"),
                    "--quick", "--out", str(out)], check=True, capture_output=True,
                   timeout=600)
    text = out.read_text()
    assert "python benchmarks/likelihood_benchmark.py --quick" in text
    row = [line for line in text.splitlines() if line.startswith("| burda")][0].split("|")
    nll, elbo = float(row[4].split()[0]), float(row[5].split()[0])
    assert 80 < nll <= elbo + 0.5 < 600  # the k = 50 bound is at least the ELBO's
    assert "86.76" in row[7]
