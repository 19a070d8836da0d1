"""Size, decode latency and accuracy of the exported decoder, per format.

    python benchmarks/export_benchmark.py --run runs/demo --out docs/benchmarks/export.md
    python benchmarks/export_benchmark.py --quick --out /tmp/export.md   # CI smoke run

For Keras (`predict_on_batch`), the SavedModel `decode` signature and each
LiteRT variant: the file size, the median decode latency for batch 1 and
batch 64, the max and mean absolute error of the images against Keras, and
the change in test negative ELBO when that decoder replaces the Keras one
(encoder, z and KL fixed; Bernoulli likelihood from the decoded means).
"""

import argparse
import os
import statistics
import tempfile
import time

import _report  # benchmarks/_report.py, beside this script
import keras
import numpy as np
import tensorflow as tf

import keras_vae
from keras_vae import edge, export, runs
from keras_vae.runs import model_options


def _size_on_disk(path):
    """Bytes of a file, or of every file under a folder."""
    if not os.path.isdir(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names)


def _median_seconds(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _model(args):
    if args.run:
        config, vae = runs.load_run(args.run)
        splits = runs.load_splits(config)
        return vae, config, splits
    # Quick mode: a small model trained for one short epoch.
    config = runs.config.resolve({"limit": 2000, "epochs": 1, "hidden_units": [64]})
    splits = runs.load_splits(config)
    keras.utils.set_random_seed(0)
    vae = keras_vae.VAE(input_shape=splits.image_shape, **model_options.model_kwargs(config))
    vae.compile(optimizer="adam")
    vae.fit(keras_vae.data.to_unit_interval(splits.x_train).numpy(), epochs=1,
            batch_size=100, verbose=0)
    return vae, config, splits


def _test_images(config, splits, count):
    dataset = keras_vae.data.make_dataset(splits.x_test[:count], 500, binarize=config["binarize"],
                                          training=False, seed=config["seed"])
    return np.concatenate(list(dataset.as_numpy_iterator()))


def _negative_elbo(x, decoded, kl):
    p = np.clip(decoded.reshape(len(x), -1).astype("float64"), 1e-7, 1 - 1e-7)
    flat = x.reshape(len(x), -1)
    reconstruction = -(flat * np.log(p) + (1 - flat) * np.log(1 - p)).sum(axis=1)
    return float(np.mean(reconstruction + kl))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a finished run directory (default: quick model)")
    parser.add_argument("--quick", action="store_true", help="few repeats, small test set")
    parser.add_argument("--out", default="docs/benchmarks/export.md")
    args = parser.parse_args(argv)
    repeats, test_count = (5, 500) if args.quick else (50, 10000)

    vae, config, splits = _model(args)
    x = _test_images(config, splits, test_count)
    loc, scale = (np.asarray(t) for t in vae.encode(x))
    z = loc + scale * np.random.default_rng(0).standard_normal(loc.shape).astype("float32")
    kl = 0.5 * np.sum(scale**2 + loc**2 - 1 - np.log(scale**2), axis=1)
    reference = np.asarray(vae.decode(z))
    z1, z64 = z[:1], z[:64]

    with tempfile.TemporaryDirectory() as folder:
        saved = export.export_saved_model(vae, folder)
        litert = export.export_litert(vae, folder, quantize=tuple(export.VARIANTS))
        decode_signature = tf.saved_model.load(saved).signatures["decode"]
        size = _size_on_disk
        decoders = {
            "Keras predict_on_batch": (
                None, lambda b: vae.likelihood.mean(vae.decoder.predict_on_batch(b))),
            "SavedModel decode": (saved, lambda b: decode_signature(z=tf.constant(b))["images"]),
        }
        for variant, path in litert.items():
            generator = edge.LiteRTGenerator(path)
            decoders[f"LiteRT {export.VARIANTS[variant]}"] = (path, generator.decode)
        rows = []
        float_nelbo = _negative_elbo(x, reference, kl)
        for name, (path, fn) in decoders.items():
            lat1 = _median_seconds(lambda fn=fn: fn(z1), repeats)
            lat64 = _median_seconds(lambda fn=fn: fn(z64), repeats)
            if name.startswith("Keras"):
                error, nelbo = np.zeros(1), float_nelbo
            else:
                images = np.concatenate([np.asarray(fn(z[i:i + 500]))
                                         for i in range(0, len(z), 500)])
                error = np.abs(images - reference)
                nelbo = _negative_elbo(x, images, kl)
            rows.append((name, "–" if path is None else f"{size(path) / 1024:.0f} KiB",
                         f"{lat1 * 1e3:.3f}", f"{lat64 * 1e3:.3f}", f"{64 / lat64:.0f}",
                         f"{error.max():.2e}",
                         f"{error.mean():.2e}", f"{nelbo - float_nelbo:+.4f}"))

    header = ("| decoder | size | batch 1 (ms) | batch 64 (ms) | images/s (batch 64) | "
              "max abs error | mean abs error | Δ test negative ELBO (nats) |")
    lines = [
        "# Export benchmark",
        "",
        *_report.provenance("export_benchmark.py", argv),
        f"Model: {'run ' + args.run if args.run else 'quick 784-64-16 model'}; "
        f"latent_dim {vae.latent_dim}; {len(x)} test images (binarize={config['binarize']}); "
        f"latency is the median of {repeats} calls after a warm-up; errors are of the "
        f"decoded images (means of p(x|z)) against Keras; the float negative ELBO is "
        f"{float_nelbo:.2f} nats.",
        "",
        header,
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ] + ["| " + " | ".join(row) + " |" for row in rows]
    _report.write(args.out, lines)


if __name__ == "__main__":
    main()
