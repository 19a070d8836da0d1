"""Training throughput of keras_vae against the alternatives, in one run.

    python benchmarks/speed_benchmark.py --out docs/benchmarks/speed.md
    python benchmarks/speed_benchmark.py --quick --out /tmp/speed.md   # CI smoke run

The same model everywhere: an MLP VAE 784-512-512-50 (ReLU; 50 latent
dimensions; the decoder mirrors the encoder), Bernoulli likelihood, Adam
1e-3, batch 128, on the bundled MNIST binarized once (seed 0):

1. keras_vae: `keras_vae.VAE(...).fit(x)` (the KL through `add_loss`) on
   the NumPy array, plain, with XLA, and as recommended with XLA and
   `steps_per_execution=10`; and with the same two settings on a
   `keras_vae.data.make_dataset` pipeline (the command line's, which
   shuffles and binarizes example by example);
2. the Keras VAE example's way: functional encoder and decoder and a custom
   `train_step` with `GradientTape`;
3. plain PyTorch on the CPU (torch 2.13, threads = CPU cores).

Throughput is images per second, the median over epochs after a warm-up
epoch. Peak resident memory is that of this process after each run.
"""

import os
import resource
import statistics
import time

import _report  # benchmarks/_report.py, beside this script
import keras
import numpy as np
import tensorflow as tf
from keras import ops

import keras_vae

LATENT, HIDDEN, BATCH = 50, (512, 512), 128


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def _throughput(seconds, images):
    timed = seconds[1:] if len(seconds) > 1 else seconds  # drop the warm-up epoch
    return images / statistics.median(timed)


def keras_vae_fit(x, epochs, jit_compile, steps_per_execution=1, pipeline=False):
    keras.utils.set_random_seed(0)
    vae = keras_vae.VAE(input_shape=(28, 28, 1), latent_dim=LATENT, hidden_units=HIDDEN)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile,
                steps_per_execution=steps_per_execution)
    timer = _EpochTimer()
    data = keras_vae.data.make_dataset(x, BATCH, training=True, seed=0) if pipeline else x
    history = vae.fit(data, epochs=epochs, batch_size=None if pipeline else BATCH, verbose=0,
                      callbacks=[timer])
    return _throughput(timer.seconds, len(x)), history.history["loss"][-1]


class _ExampleVAE(keras.Model):
    """The keras.io VAE example's structure: a custom train_step."""

    def __init__(self):
        super().__init__()
        self.encoder = keras.Sequential(
            [keras.Input((28, 28, 1)), keras.layers.Flatten()]
            + [keras.layers.Dense(u, activation="relu") for u in HIDDEN]
            + [keras.layers.Dense(2 * LATENT)])
        self.decoder = keras.Sequential(
            [keras.Input((LATENT,))]
            + [keras.layers.Dense(u, activation="relu") for u in reversed(HIDDEN)]
            + [keras.layers.Dense(784), keras.layers.Reshape((28, 28, 1))])
        self.seed_generator = keras.random.SeedGenerator(0)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            mean, raw = ops.split(self.encoder(data), 2, axis=-1)
            std = ops.softplus(raw + 0.5413) + 1e-4
            z = mean + std * keras.random.normal(ops.shape(mean), seed=self.seed_generator)
            logits = self.decoder(z)
            reconstruction = ops.sum(ops.binary_crossentropy(data, logits, from_logits=True),
                                     axis=(1, 2, 3))
            kl = 0.5 * ops.sum(std**2 + mean**2 - 1 - 2 * ops.log(std), axis=1)
            loss = ops.mean(reconstruction + kl)
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


def keras_example(x, epochs):
    keras.utils.set_random_seed(0)
    model = _ExampleVAE()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    timer = _EpochTimer()
    history = model.fit(x, epochs=epochs, batch_size=BATCH, verbose=0, callbacks=[timer])
    return _throughput(timer.seconds, len(x)), history.history["loss"][-1]


def pytorch(x, epochs):
    try:
        import torch
    except ImportError:
        return None, None
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    relu = torch.nn.ReLU
    layers = [torch.nn.Flatten()]
    width = 784
    for units in HIDDEN:
        layers += [torch.nn.Linear(width, units), relu()]
        width = units
    encoder = torch.nn.Sequential(*layers, torch.nn.Linear(width, 2 * LATENT))
    layers, width = [], LATENT
    for units in reversed(HIDDEN):
        layers += [torch.nn.Linear(width, units), relu()]
        width = units
    decoder = torch.nn.Sequential(*layers, torch.nn.Linear(width, 784))
    parameters = list(encoder.parameters()) + list(decoder.parameters())
    optimizer = torch.optim.Adam(parameters, lr=1e-3)
    data = torch.from_numpy(x.reshape(len(x), 784))
    seconds, loss = [], None
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(data))
        for index in range(0, len(data), BATCH):
            batch = data[order[index: index + BATCH]]
            mean, raw = encoder(batch).chunk(2, dim=1)
            std = torch.nn.functional.softplus(raw + 0.5413) + 1e-4
            z = mean + std * torch.randn_like(std)
            logits = decoder(z)
            reconstruction = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, batch, reduction="none").sum(1)
            kl = 0.5 * (std**2 + mean**2 - 1 - 2 * torch.log(std)).sum(1)
            loss = (reconstruction + kl).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return _throughput(seconds, len(x)), float(loss)


def _peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None):
    args, epochs, limit = _report.epochs_arguments(argv, __doc__, 5, (2, 3000),
                                                   "docs/benchmarks/speed.md")

    (x, _), _ = keras_vae.data.load_mnist()
    x = x[:limit]
    x = (np.random.default_rng(0).uniform(size=x.shape) < x / 255.0).astype("float32")
    rows = []
    for name, run in (("keras_vae fit", lambda: keras_vae_fit(x, epochs, False)),
                      ("keras_vae fit, XLA", lambda: keras_vae_fit(x, epochs, True)),
                      ("keras_vae fit, steps_per_execution=10 + XLA",
                       lambda: keras_vae_fit(x, epochs, True, 10)),
                      ("keras_vae fit, make_dataset + steps_per_execution=10 + XLA",
                       lambda: keras_vae_fit(x, epochs, True, 10, pipeline=True)),
                      ("Keras example (custom train_step)", lambda: keras_example(x, epochs)),
                      ("PyTorch (CPU)", lambda: pytorch(x, epochs))):
        speed, loss = run()
        rows.append((name, speed, loss, _peak_mib()))
        print(f"{name}: {speed or 0:.0f} images/s, final loss {loss}", flush=True)

    baseline = rows[-2][1]
    torch_speed = rows[-1][1]
    lines = [
        "# Training speed",
        "",
        *_report.provenance("speed_benchmark.py", argv),
        f"MLP VAE 784-512-512-50, batch 128, Adam, {len(x)} statically binarized MNIST "
        f"images, {epochs} epochs; throughput is the median over the epochs after the "
        "first. Peak memory is the process's after each run (cumulative).",
        "",
        "| implementation | images/s | vs custom train_step | vs PyTorch | final loss "
        "| peak RSS (MiB) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, speed, loss, peak in rows:
        if speed is None:
            lines.append(f"| {name} | not installed | | | | |")
            continue
        versus_torch = f"{speed / torch_speed:.2f}×" if torch_speed else "–"
        lines.append(f"| {name} | {speed:.0f} | {speed / baseline:.2f}× | {versus_torch} | "
                     f"{loss:.2f} | {peak:.0f} |")
    _report.write(args.out, lines)


if __name__ == "__main__":
    main()
