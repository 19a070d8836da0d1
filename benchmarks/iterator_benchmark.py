"""The wait at the end of an epoch: tf.data's autotuning thread holds a
deleted iterator until its next tuning time (keras_vae/data/untuned.py).

    python benchmarks/iterator_benchmark.py --out docs/benchmarks/iterator.md
    python benchmarks/iterator_benchmark.py --quick --out /tmp/iterator.md   # CI smoke run

The resnet VAE of benchmarks/resnet_benchmark.py (the model of
examples/photos.yaml at 32×32×3) trains on random 8-bit images held in
memory, one epoch per `fit` call, `--repeats` calls: through Keras's own
array adapter (`keras.Model.fit`, tf.data's autotuning on) and through
`keras_vae.VAE.fit` (the same batches as a dataset with autotuning off).
For each call: the time from the last step's end (`on_train_end`) to
`fit`'s return, which is the deleted iterator's wait, and the call's time.
"""

import argparse
import statistics
import time

import _report  # benchmarks/_report.py, beside this script
import numpy as np
from resnet_benchmark import BLOCKS, COMPONENTS, LATENT, SHAPE, WIDTHS


def fit_waits(batch, steps, repeats):
    """{path: (each call's seconds, each call's wait)}."""
    import keras

    import keras_vae
    from keras_vae.distributions.logistic_mixture import DiscretizedLogisticMixture

    class EndTime(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            self.time = time.perf_counter()

    x = (np.random.default_rng(0).integers(0, 256, (batch * steps,) + SHAPE) / 255.0).astype(
        "float32")
    results = {}
    for name, fit in (("keras.Model.fit (Keras's array adapter, autotuning on)",
                       keras.Model.fit),
                      ("keras_vae.VAE.fit (autotuning off)", keras_vae.VAE.fit)):
        keras.utils.set_random_seed(0)
        vae = keras_vae.VAE(SHAPE, latent_dim=LATENT, encoder=keras_vae.networks.ResNet(BLOCKS),
                            decoder=keras_vae.networks.ResNet(BLOCKS), conv_filters=WIDTHS,
                            activation="silu",
                            likelihood=DiscretizedLogisticMixture(components=COMPONENTS))
        vae.compile(optimizer=keras.optimizers.Adam(1e-3))
        fit(vae, x[:batch], batch_size=batch, verbose=0)  # trace
        calls, waits = [], []
        for _ in range(repeats):
            end = EndTime()
            start = time.perf_counter()
            fit(vae, x, batch_size=batch, verbose=0, callbacks=[end])
            done = time.perf_counter()
            calls.append(done - start)
            waits.append(done - end.time)
        results[name] = (calls, waits)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="batch 16, 4 steps, 2 repeats")
    parser.add_argument("--out", default="docs/benchmarks/iterator.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.steps, args.repeats = 16, 4, 2
    lines = ["# The wait at the end of an epoch", "",
             *_report.provenance("iterator_benchmark.py", argv), "",
             f"The resnet VAE at {SHAPE[0]}×{SHAPE[1]}×{SHAPE[2]} (benchmarks/resnet_benchmark.py),"
             f" {args.repeats} calls of `fit` of one epoch each ({args.steps} steps of "
             f"{args.batch} images in memory); seconds:", "",
             "| fit | calls with a wait > 0.1 s | wait, median | wait, largest | call, median "
             "| images/s (median call) |", "|---|---|---|---|---|---|"]
    results = fit_waits(args.batch, args.steps, args.repeats)
    for name, (calls, waits) in results.items():
        waited = sum(wait > 0.1 for wait in waits)
        median = statistics.median(calls)
        lines.append(f"| {name} | {waited} of {len(waits)} | {statistics.median(waits):.3f} | "
                     f"{max(waits):.3f} | {median:.2f} | "
                     f"{args.batch * args.steps / median:.1f} |")
    lines += ["", "Each call's wait (seconds), in order:", ""]
    lines += [f"- {name}: {', '.join(f'{wait:.3f}' for wait in waits)}"
              for name, (_, waits) in results.items()]
    _report.write(args.out, lines)


if __name__ == "__main__":
    main()
