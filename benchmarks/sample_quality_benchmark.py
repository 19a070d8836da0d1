"""Sample quality of the demo model: prior against fitted Gaussian mixtures,
in Keras and in every LiteRT variant.

    python benchmarks/sample_quality_benchmark.py --out docs/benchmarks/sample-quality.md
    python benchmarks/sample_quality_benchmark.py --quick --out /tmp/quality.md  # CI smoke run

Trains the `make demo` configuration (examples/mnist.yaml) unless `--run`
names a finished run, fits `GaussianMixtureSampler`s with several K to the
training codes, and measures the Fréchet distance and precision/recall
(`keras_vae.evaluation.quality`) of N samples against N test images, for the prior and
each sampler, from Keras and from the exported LiteRT files (float32,
float16, dynamic-range, int8), drawn on the device path (`keras_vae.edge`).
"""

import argparse
import os
import sys
import tempfile
import time

import _report  # benchmarks/_report.py, beside this script
import numpy as np

from keras_vae import data, edge, export, runs, samplers
from keras_vae.evaluation import quality
from keras_vae.runs import config as config_lib

HERE = os.path.dirname(os.path.abspath(__file__))


def _demo_run(folder, quick):
    values = config_lib.read_file(os.path.join(HERE, os.pardir, "examples", "mnist.yaml"))
    if quick:
        values.update(epochs=1, limit=3000)
    run_dir = os.path.join(folder, "demo")
    runs.train(config_lib.resolve(values), run_dir, verbose=0)
    return run_dir


def _epochs_trained(run_dir):
    """The rows of the run's history.csv: the epochs it finished (a time
    budget stops before `epochs`)."""
    with open(runs.path(run_dir, "history"), encoding="utf-8") as f:
        return sum(1 for _ in f) - 1


def _litert_images(path, sampler, n):
    generator = edge.LiteRTGenerator(path)
    batches = [generator.sample(min(4096, n - start), sampler=sampler)
               for start in range(0, n, 4096)]
    return np.concatenate(batches)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a finished run (default: train the demo)")
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--components", default="1,5,10,20")
    parser.add_argument("--quick", action="store_true", help="1 epoch, 500 samples, K=1,5")
    parser.add_argument("--out", default="docs/benchmarks/sample-quality.md")
    args = parser.parse_args(argv)
    n = 500 if args.quick else args.samples
    ks = (1, 5) if args.quick else tuple(int(k) for k in args.components.split(","))
    folder = tempfile.mkdtemp()
    started = time.time()
    run_dir = args.run or _demo_run(folder, args.quick)
    described = f"`{run_dir}`" if args.run else "examples/mnist.yaml, trained here"
    config, vae = runs.load_run(run_dir)
    splits = runs.load_splits(config)
    real = data.to_unit_interval(splits.x_test[:n]).numpy()
    # The training images as the model saw them, streamed (read once, then cached).
    train_inputs = runs.build.dataset(config, vae, splits.train, training=False,
                                      batch_size=1000)
    for k in ks:
        vae.add_sampler(f"gmm{k}", samplers.GaussianMixtureSampler(k).fit(vae, train_inputs))
    features = quality.Features()
    rows = []
    for name in ["prior", *vae.samplers]:
        images = np.asarray(vae.sample(n, seed=1, sampler=name))
        rows.append(("Keras", name, quality.report(features, real, images)))
    paths = export.export_litert(vae, folder, quantize=tuple(export.VARIANTS))
    for variant, path in paths.items():
        for name in [None, *vae.samplers]:
            images = _litert_images(path, name, n)
            rows.append((f"LiteRT {export.VARIANTS[variant]}", name or "prior",
                         quality.report(features, real, images)))
    prior = rows[0][2]["frechet_distance"]
    lines = [
        "# Sample quality: the prior against fitted Gaussian mixtures, Keras and LiteRT",
        "",
        *_report.provenance("sample_quality_benchmark.py", argv),
        "",
        f"Model: {described} ({_epochs_trained(run_dir)} epochs, {config['prior']} prior, "
        f"{config['objective']} objective, hidden units {config['hidden_units']}, latent_dim "
        f"{config['latent_dim']}, {config['likelihood']} likelihood). {n} samples against "
        f"{n} test images, features of the committed MNIST classifier (test accuracy "
        f"{quality.classifier_card()['test_accuracy']:.4f}). Lower Fréchet distance is "
        "better; \"vs prior\" compares with the Keras prior row; precision and recall "
        "in [0, 1] (higher is better). LiteRT rows are drawn on the device path "
        "(`keras_vae.edge`, the sampling inside the .tflite file).",
        "",
        "| path | sampler | Fréchet distance | vs prior | precision | recall |",
        "|---|---|---|---|---|---|",
    ]
    for path, name, scores in rows:
        lines.append(f"| {path} | {name} | {scores['frechet_distance']:.2f} | "
                     f"{100 * (scores['frechet_distance'] / prior - 1):+.0f}% | "
                     f"{scores['precision']:.3f} | {scores['recall']:.3f} |")
    lines += ["", f"Total time: {time.time() - started:.0f} s."]
    _report.write(args.out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
