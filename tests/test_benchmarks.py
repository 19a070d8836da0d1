"""Each benchmark's quick mode runs and writes a report with real numbers.

CI proves the scripts work this way (`make test-benchmarks`, run by
.ci/run); it never asserts speed. Minutes of training in all: under the
`slow` marker, outside the default suite.
"""

import itertools
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_vae

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow


def _quick_report(script, tmp_path, *options):
    """Run `benchmarks/<script> --quick`; return its report and table rows."""
    out = tmp_path / "report.md"
    subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), "--quick",
                    *options, "--out", str(out)], check=True, capture_output=True, timeout=600)
    text = out.read_text()
    # The reproducing command.
    assert f"python benchmarks/{script} --quick {' '.join(options)}".strip() in text
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in text.splitlines()
            if line.startswith("| ") and "---" not in line]
    return text, rows[1:]  # without the header row


def test_speed_benchmark_quick_mode(tmp_path):
    _, rows = _quick_report("speed_benchmark.py", tmp_path)
    assert [row[0] for row in rows] == [
        "keras_vae fit", "keras_vae fit, XLA",
        "keras_vae fit, steps_per_execution=10 + XLA",
        "keras_vae fit, make_dataset + steps_per_execution=10 + XLA",
        "Keras example (custom train_step)", "PyTorch (CPU)"]
    for row in rows:
        assert float(row[1]) > 100  # images per second
        assert 50 < float(row[4]) < 600  # a trained loss in nats
    assert rows[4][2] == "1.00×"  # the baseline against itself


@pytest.mark.parametrize("options, published, hidden", [
    ((), "86.76 nats", "(200, 200)"),
    (("--model", "best", "--lr-schedule", "cosine"), "82.90 nats (two-layer IWAE)", "(500, 500)"),
    (("--model", "ladder", "--lr-schedule", "cosine"), "81.74 nats (Ladder VAE)", "(500, 500)"),
])
def test_likelihood_benchmark_quick_mode(tmp_path, options, published, hidden):
    saved = str(tmp_path / "model.keras")
    text, rows = _quick_report("likelihood_benchmark.py", tmp_path, *options, "--save", saved)
    (row,) = rows
    nll, elbo = float(row[3].split()[0]), float(row[4].split()[0])
    assert 80 < nll <= elbo + 0.5 < 600  # the k = 50 bound is at least the ELBO's
    assert published in row[6]
    assert f"'hidden_units': {hidden}" in text
    if "ladder" in options:  # active units of z_1 + z_2, of 100 + 50
        assert row[5].endswith(" / 150") and len(row[5].split(" + ")) == 2
    # The saved model is the one the table measured: the seeded estimate again.
    vae = keras.saving.load_model(saved)
    test = keras_vae.data.make_dataset(keras_vae.data.load_mnist()[1][0][:200], 1000,
                                       binarize="dynamic", training=False, seed=0)
    x = np.concatenate(list(test.as_numpy_iterator()))
    again = -keras_vae.evaluation.log_likelihood(vae, x, num_samples=50, verbose=False)
    assert f"{again.mean():.2f}" == row[3].split()[0]


def test_likelihood_benchmark_refuses_a_save_path_keras_cannot_write(tmp_path):
    process = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "likelihood_benchmark.py"),
         "--save", str(tmp_path / "model.h5")], capture_output=True, text=True, timeout=120)
    assert process.returncode == 2
    assert (f"--save takes a path ending in .keras, such as best.keras. Received: "
            f"'{tmp_path / 'model.h5'}'") in process.stderr


def test_memory_benchmark_quick_mode(tmp_path):
    out = tmp_path / "report.md"
    process = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "benchmarks", "memory_benchmark.py"), "--quick",
         "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # wait4 gives this child's own resource usage: the kernel's peak RSS of the
    # whole process, measured independently of the script's own bookkeeping.
    _, status, usage = os.wait4(process.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    text = out.read_text()
    assert "python benchmarks/memory_benchmark.py --quick" in text
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in text.splitlines()
            if line.startswith("| ") and "---" not in line][1:]
    assert [int(row[0]) for row in rows] == [1, 2, 3]
    assert all(float(row[1]) > 100 for row in rows)  # resident MiB of a TF process
    peaks = [float(row[2]) for row in rows]
    assert all(peak >= float(row[1]) for peak, row in zip(peaks, rows, strict=True))  # high-water mark
    assert peaks == sorted(peaks)  # never decreases
    kernel_peak = usage.ru_maxrss / 1024  # KiB on Linux
    assert f"peak resident memory of the whole run: {peaks[-1]:.0f} MiB" in text
    assert abs(peaks[-1] - kernel_peak) < 0.05 * kernel_peak, (peaks[-1], kernel_peak)


def test_export_benchmark_quick_mode(tmp_path):
    _, rows = _quick_report("export_benchmark.py", tmp_path)
    assert [row[0] for row in rows] == [
        "Keras predict_on_batch", "SavedModel decode", "LiteRT float32",
        "LiteRT float16", "LiteRT dynamic", "LiteRT int8"]
    float32 = rows[2]
    assert float(float32[4]) > 0  # images per second
    assert float(float32[5]) < 1e-5  # max abs error of the float32 file


def test_sample_quality_benchmark_quick_mode(tmp_path):
    _, rows = _quick_report("sample_quality_benchmark.py", tmp_path)
    paths = [row[0] for row in rows]
    assert paths[:3] == ["Keras"] * 3  # prior, gmm1, gmm5
    assert {"LiteRT float32", "LiteRT float16", "LiteRT dynamic", "LiteRT int8"} <= set(paths)
    assert [row[1] for row in rows[:3]] == ["prior", "gmm1", "gmm5"]
    for row in rows:
        assert float(row[2]) > 0 and 0 <= float(row[4]) <= 1 and 0 <= float(row[5]) <= 1
    assert rows[0][3] == "+0%"  # the prior against itself


def test_evaluator_benchmark_quick_mode(tmp_path):
    _, rows = _quick_report("evaluator_benchmark.py", tmp_path)
    assert [row[0] for row in rows] == [
        "TFP Bernoulli.log_prob (before)",
        "Bernoulli.log_prob = Σ x·l − softplus(l) (now, float32)",
        'now, precision="bfloat16": bfloat16 products, XLA elementwise']
    before, now, fast = rows
    assert float(before[1]) > 0 and float(now[1]) > 0 and float(fast[1]) > 0
    # The package's log-probability is TFP's value: the same estimate, seed for seed.
    assert now[3:5] == before[3:5] and abs(float(now[6])) < 1e-3
    assert 100 < float(before[3]) < 600 and float(before[5]) > 0
    # bfloat16 products move the estimate by less than its Monte-Carlo error.
    assert abs(float(fast[6])) < float(before[5])


def test_generalization_gap_quick_mode(tmp_path):
    text, rows = _quick_report("generalization_gap.py", tmp_path)
    assert [row[0] for row in rows] == ["training", "test", "test − training"]
    training, test, gap = ([float(value) for value in row[1:]] for row in rows)
    for scores in (training, test):
        elbo, nll, keras_xla, keras_plain = scores
        assert 80 < nll <= elbo + 0.5 < 2000  # the k = 20 bound is at least the ELBO's
        assert keras_xla > 80 and keras_plain > 80
    np.testing.assert_allclose(gap, np.subtract(test, training), atol=0.011)
    assert "'inference': 'ladder'" in text and "100 images drawn at random" in text


def test_data_benchmark_quick_mode(tmp_path):
    work = tmp_path / "work"
    text, rows = _quick_report("data_benchmark.py", tmp_path, "--work", str(work))
    rates = {row[0]: row for row in rows if len(row) == 3 and row[0] != "source"}
    assert set(rates) == {"PNG folder", "JPEG folder", "TFRecord shards"}
    for _, alone, trained in rates.values():
        assert float(alone.replace(",", "")) > 0 and float(trained.replace(",", "")) > 0
    memory = {row[0]: row for row in rows if len(row) == 4 and row[0] != "source"}
    assert set(memory) == {"PNG folder", "TFRecord shards"}
    for _, small, large, growth in memory.values():
        peaks = [float(cell.split(" MiB")[0].replace(",", "")) for cell in (small, large)]
        assert all(peak > 100 for peak in peaks)  # resident MiB of a TensorFlow process
        assert float(growth.split(" MiB")[0].replace(",", "")) == pytest.approx(
            peaks[1] - peaks[0], abs=1)
    # The synthetic data it made: 600 training images plus a test share, as
    # files and as shards, and the results kept for a resumed run.
    pngs = [f for _, _, files in os.walk(work / "png") for f in files]
    assert len(pngs) == 666
    metadata = json.loads((work / "shards" / "dataset.json").read_text())
    assert sum(metadata["counts"].values()) == 666
    assert len(json.loads((work / "results.json").read_text())) == 3 + 1 + 4


def test_photo_benchmark_quick_mode(tmp_path):
    work = tmp_path / "work"
    text, rows = _quick_report("photo_benchmark.py", tmp_path, "--work", str(work))
    bits = {row[0]: float(row[1]) for row in rows}
    codecs = {"PNG (Pillow, optimize)", "WebP lossless (Pillow, method 6)",
              "JPEG-XL lossless (imagecodecs, effort 9)", "JPEG 2000 lossless (imagecodecs)"}
    models = {"VAE: resnet + logistic mixture", "VAE: conv + logistic mixture",
              "VAE: resnet + discretized logistic",
              "VAE: resnet + autoregressive mixture + augment",
              "VAE: resnet + autoregressive mixture (12 neighbours) + augment",
              "VAE: resnet + autoregressive mixture (every channel, local scales) + augment",
              "VAE: resnet + autoregressive mixture (every channel, local scales) + augment, "
              "clipped"}
    assert set(bits) == codecs | models
    assert all(0 < bits[name] < 8 for name in codecs)   # crops of natural photos
    assert all(np.isfinite(bits[name]) and bits[name] > 0 for name in models)
    results = json.loads((work / "results.json").read_text())
    for name in models:  # the IS estimate is at least as tight as the ELBO
        row = results[name.removeprefix("VAE: ")]
        assert row["iw"] <= row["elbo"] + 0.05
        assert (work / "runs" / os.path.basename(row["run"]) / "samples.png").exists()
        # The last row trains as examples/photos.yaml says; the others as before.
        config = json.loads((work / "runs" / os.path.basename(row["run"]) / "config.json")
                            .read_text())
        clipped = name.endswith(", clipped")
        assert (config["learning_rate"], config["clipnorm"]) == (
            (0.001, 20000.0) if clipped else (0.002, None)), name
    picture = tmp_path / "photos-autoregressive-draws.png"  # beside the report (--out)
    assert picture.read_bytes().startswith(b"\x89PNG")


def test_resnet_benchmark_quick_mode(tmp_path):
    text, rows = _quick_report("resnet_benchmark.py", tmp_path)
    speed = [row for row in rows if row[0] in ("float32", "bfloat16")]
    assert [(row[0], row[1].split(" (")[0]) for row in speed] == [
        ("float32", "Keras 3 + TensorFlow")] * 3 + [("float32", "PyTorch 2.13.0+cpu")] + [
        ("bfloat16", "Keras 3 + TensorFlow"), ("bfloat16", "PyTorch 2.13.0+cpu")]
    assert "mixed_bfloat16" in speed[4][1] and "autocast bfloat16" in speed[5][1]
    assert all(float(row[2]) > 0 for row in speed)
    # Each precision's ratio is against PyTorch in that precision.
    assert speed[3][4] == speed[5][4] == "1.00×"
    # The same network in both: the same number of trainable parameters.
    assert len({row[3] for row in speed}) == 1
    # The mixture's log-probability alone, with and without its gradient.
    times = {row[0]: float(row[1]) for row in rows if "log p" in row[0]}
    assert set(times) == {
        "TensorFlow graph, log p", "TensorFlow XLA, log p",
        "TensorFlow graph, log p and gradient",
        "keras_vae fused kernel (training step), log p and gradient",
        "PyTorch eager, log p", "PyTorch eager, log p and gradient"}
    assert all(ms > 0 for ms in times.values())
    silu = {row[0]: float(row[1]) for row in rows if "silu and gradient" in row[0]}
    assert set(silu) == {"TensorFlow graph, tf.nn.silu and gradient",
                         "keras_vae fused silu (training step), silu and gradient",
                         "PyTorch eager, silu and gradient"}
    assert all(ms > 0 for ms in silu.values())
    sizes = [row for row in rows if row[0] in ("resnet", "conv")]
    assert {row[0] for row in sizes} == {"resnet", "conv"}
    assert all(0 < float(row[3].split(" MiB")[0]) < 2048 for row in sizes)


def test_anomaly_benchmark_quick_mode(tmp_path):
    work = tmp_path / "work"
    text, rows = _quick_report("anomaly_benchmark.py", tmp_path, "--work", str(work))
    digits = {row[0]: row for row in rows if row[0] in ("0", "1", "mean")}
    assert set(digits) == {"0", "1", "mean"}
    # The published Deep SVDD numbers, and this run's AUROCs in (50, 100].
    assert digits["1"][-1] == "99.7" and digits["0"][-1] == "98.0"
    assert all(50 < float(digits[d][1]) <= 100 for d in ("0", "1"))
    tables = {row[0]: row[1:] for row in rows if row[0] in ("breast_cancer", "wine", "digits")}
    assert set(tables) == {"breast_cancer", "wine", "digits"}
    for cells in tables.values():
        assert len(cells) == 7  # keras_vae's two VAEs and five baselines
        assert all(0 <= float(c.strip("*").split(" ± ")[0]) <= 100 for c in cells)
    results = json.loads((work / "anomaly.json").read_text())
    assert results["speed"]["litert_float32_rows_per_second"] > 0
    # The default score: latent under a mixture with K from samplers.AUTO_COMPONENTS.
    assert results["digits"]["0"]["mixture_components"] in (1, 2, 5, 10, 20, 40)


def test_the_autoregressive_pilot_is_causal_and_runs(tmp_path):
    """benchmarks/autoregressive_pilot.py: a pixel's neighbour values hold only
    pixels before it in raster order (so its likelihood is normalised), and a
    short run reports finite bits per dimension."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import autoregressive_pilot as pilot
    finally:
        sys.path.pop(0)
    x = np.random.default_rng(0).uniform(size=(1, 6, 5, 3)).astype("float32")
    before = np.asarray(pilot.neighbour_values(x, 12))
    assert before.shape == (1, 6, 5, 3, 12)
    for i, j in ((0, 0), (2, 3), (5, 4), (3, 0)):
        changed = x.copy()
        changed[0, i, j] = 1.0 - changed[0, i, j]
        moved = np.any(np.asarray(pilot.neighbour_values(changed, 12)) != before, axis=(0, 3, 4))
        raster = np.arange(30).reshape(6, 5)
        assert not np.any(moved[raster <= raster[i, j]]), (i, j)  # none at or before it
        if (i, j) != (5, 4):  # and it is a neighbour of the pixel after it
            assert moved.ravel()[raster[i, j] + 1], (i, j)
    # --augment: each crop as it was or flipped left to right, its channels in
    # some order; over many crops both flips and several orders occur.
    crops = np.random.default_rng(1).integers(0, 256, (400, 4, 5, 3)).astype("float32")
    augmented = pilot.augment(crops, np.random.default_rng(2))
    flips, orders = 0, set()
    for crop, out in zip(crops, augmented, strict=True):
        matches = [(flip, order) for flip in (False, True)
                   for order in itertools.permutations(range(3))
                   if np.array_equal(out, (crop[:, ::-1] if flip else crop)[..., list(order)])]
        assert matches, "an augmented crop is not a flip and a channel order of its crop"
        flips += matches[0][0]
        orders.add(matches[0][1])
    assert 150 < flips < 250 and len(orders) == 6
    out = tmp_path / "pilot.json"
    subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "autoregressive_pilot.py"),
                    "--minutes", "0.05", "--train-crops", "256", "--out", str(out)],
                   check=True, capture_output=True, timeout=600)
    result = json.loads(out.read_text())
    assert result["neighbours"] == 4 and result["k"] == 100 and result["history"]
    # A few steps: finite and positive, not yet good.
    assert np.isfinite(result["test_bits_is"]) and result["test_bits_is"] > 0
    assert np.isfinite(result["test_bits_elbo"]) and result["test_bits_elbo"] > 0


def test_iterator_benchmark_quick_mode(tmp_path):
    text, rows = _quick_report("iterator_benchmark.py", tmp_path)
    assert [row[0] for row in rows] == [
        "keras.Model.fit (Keras's array adapter, autotuning on)",
        "keras_vae.VAE.fit (autotuning off)"]
    for row in rows:
        waited, calls = row[1].split(" of ")
        assert calls == "2" and 0 <= int(waited) <= 2
        assert 0 <= float(row[2]) <= float(row[3]) < float(row[4]) + 60
        assert float(row[5]) > 0
    assert "- keras_vae.VAE.fit (autotuning off): " in text
