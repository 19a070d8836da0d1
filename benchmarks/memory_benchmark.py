"""Resident memory of a long training run, epoch by epoch.

    python benchmarks/memory_benchmark.py --epochs 30 --out docs/benchmarks/memory.md
    python benchmarks/memory_benchmark.py --quick --out /tmp/memory.md   # CI smoke run

Trains the default MLP VAE on the bundled MNIST (dynamic binarization,
batch 128) and records the process's resident set size after every epoch,
and its peak resident set size so far (the high-water mark, which also
catches spikes inside an epoch). Memory must stay flat: the report gives
the growth from the second epoch (after TensorFlow's one-off allocations)
to the last.
"""

import resource
import time

import _report  # benchmarks/_report.py, beside this script
import keras
import psutil

import keras_vae


class _MemoryLog(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rows = []
        self._start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        rss = psutil.Process().memory_info().rss / 2**20
        # The kernel's high-water mark (KiB on Linux) can lag the current RSS by
        # a MiB or so, so the peak is the larger of it and every RSS seen.
        peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, rss,
                   self.rows[-1][2] if self.rows else 0.0)
        self.rows.append((epoch + 1, rss, peak, time.time() - self._start, logs["loss"]))
        print(f"epoch {epoch + 1}: {rss:.0f} MiB resident (peak {peak:.0f} MiB), "
              f"loss {logs['loss']:.2f}", flush=True)


def main(argv=None):
    args, epochs, limit = _report.epochs_arguments(argv, __doc__, 30, (3, 2000),
                                                   "docs/benchmarks/memory.md")

    keras.utils.set_random_seed(0)
    (x_train, _), _ = keras_vae.data.load_mnist()
    train = keras_vae.data.make_dataset(x_train[:limit], 128, binarize="dynamic",
                                        training=True, seed=0)
    vae = keras_vae.VAE(input_shape=(28, 28, 1), latent_dim=16)
    vae.compile(optimizer="adam")
    log = _MemoryLog()
    vae.fit(train, epochs=epochs, callbacks=[log], verbose=0)

    first, last = log.rows[min(1, len(log.rows) - 1)][1], log.rows[-1][1]
    lines = [
        "# Memory during a long training run",
        "",
        *_report.provenance("memory_benchmark.py", argv),
        f"Default MLP VAE on {'2000 images of ' if limit else ''}MNIST, dynamic "
        f"binarization, batch 128, {epochs} epochs. Resident memory grew by "
        f"{last - first:+.0f} MiB from epoch {min(2, len(log.rows))} to epoch {epochs} "
        f"({(last - first) / max(1, len(log.rows) - 2):+.1f} MiB per epoch); "
        f"peak resident memory of the whole run: {log.rows[-1][2]:.0f} MiB.",
        "",
        "| epoch | resident memory (MiB) | peak so far (MiB) | elapsed (s) | loss |",
        "| --- | --- | --- | --- | --- |",
    ] + [f"| {e} | {rss:.0f} | {peak:.0f} | {t:.0f} | {loss:.2f} |"
         for e, rss, peak, t, loss in log.rows]
    _report.write(args.out, lines)


if __name__ == "__main__":
    main()
