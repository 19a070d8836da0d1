"""The resnet VAE: training speed against the same network in PyTorch, and
export sizes at 64×64×3.

    python benchmarks/resnet_benchmark.py --out docs/benchmarks/resnet.md
    python benchmarks/resnet_benchmark.py --quick --out /tmp/resnet.md   # CI smoke run

Speed: the model of examples/photos.yaml (32×32×3, resnet stages of widths
32 and 64 with 2 blocks each, latent 128, the discretized logistic mixture
with 5 components), one training step = encoder, reparameterized z, decoder,
mixture log-likelihood, closed-form KL, Adam. Keras (`fit` on arrays in
memory, with and without XLA, and under the mixed_bfloat16 policy) and the
same network and loss written in PyTorch (eager, and under
torch.autocast in bfloat16) run in this one process, one after the other, on the same random
8-bit images, with the same threads; images per second are the median of
`--repeats` timed runs of `--steps` steps each, after a warm-up.

Export: the resnet and conv VAEs for 64×64×3 photos, written as a
SavedModel and as fixed-shape LiteRT files (float32 and int8), with each
file's size against the format's limit (2 GiB for a FlatBuffer, 2 GiB for
the SavedModel's graph protobuf; the weights of a SavedModel are kept
beside it in its variables).
"""

import argparse
import os
import statistics
import tempfile
import time

import _report  # benchmarks/_report.py, beside this script
import numpy as np
import torch_resnet  # benchmarks/torch_resnet.py, beside this script

SHAPE = (32, 32, 3)
WIDTHS, BLOCKS, LATENT, COMPONENTS = (32, 64), 2, 128, 5
LIMIT = 2 * 2**30


def keras_speed(x, batch, steps, repeats, jit, steps_per_execution=1, policy="float32"):
    import keras

    import keras_vae
    from keras_vae.distributions.logistic_mixture import DiscretizedLogisticMixture

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(policy)
    vae = keras_vae.VAE(SHAPE, latent_dim=LATENT, encoder=keras_vae.networks.ResNet(BLOCKS),
                        decoder=keras_vae.networks.ResNet(BLOCKS), conv_filters=WIDTHS,
                        activation="silu",
                        likelihood=DiscretizedLogisticMixture(components=COMPONENTS))
    vae.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit,
                steps_per_execution=steps_per_execution)
    data = x[:batch * steps]
    vae.fit(data[:batch * steps_per_execution], batch_size=batch, verbose=0)  # trace
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        vae.fit(data, batch_size=batch, verbose=0)
        times.append(time.perf_counter() - start)
    keras.mixed_precision.set_global_policy("float32")
    return (batch * steps / statistics.median(times),
            sum(int(np.prod(w.shape)) for w in vae.trainable_weights))


def _milliseconds(function, args, repeats, calls):
    """Median over `repeats` runs of the ms per call of `calls` calls of
    `function(*args)`, after one call that traces and compiles it."""
    function(*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            function(*args)
        times.append((time.perf_counter() - start) / calls * 1000.0)
    return statistics.median(times)


def log_prob_times(batch, repeats, calls=10):
    """{row: ms per batch} of the mixture's log-probability alone (decoder
    outputs of a batch of 32×32×3 images, K = 5), with and without its
    gradient, in TensorFlow (plain graph, XLA, and keras_vae's fused kernel
    of a training step) and in PyTorch."""
    import functools

    import tensorflow as tf
    import torch

    from keras_vae.distributions import fused, logistic_mixture

    rng = np.random.default_rng(0)
    per_pixel = logistic_mixture.parameter_count(SHAPE[2], COMPONENTS)
    params = (0.1 * rng.normal(size=(batch,) + SHAPE[:2] + (per_pixel,))).astype("float32")
    x = (rng.integers(0, 256, (batch,) + SHAPE) / 255.0).astype("float32")

    def values(params):
        return logistic_mixture.Mixture(params, 3, COMPONENTS, 1e-2).log_prob(x)

    def with_gradient(params):
        with tf.GradientTape() as tape:
            tape.watch(params)
            total = tf.reduce_sum(values(params))
        return tape.gradient(total, params)

    def timed(function, *args):
        return _milliseconds(function, args, repeats, calls)

    tensor = tf.constant(params)
    rows = {"TensorFlow graph, log p": timed(tf.function(values), tensor),
            "TensorFlow XLA, log p": timed(tf.function(values, jit_compile=True), tensor),
            "TensorFlow graph, log p and gradient": timed(tf.function(with_gradient), tensor)}
    fused_function = tf.function(with_gradient)
    with fused.training_step():  # traced as keras_vae's train_step traces it
        fused_function.get_concrete_function(tensor)
    rows["keras_vae fused kernel (training step), log p and gradient"] = timed(
        fused_function, tensor)
    mixture = functools.partial(torch_resnet.mixture_log_prob,
                                x=torch.from_numpy(x.transpose(0, 3, 1, 2)),
                                components=COMPONENTS)
    leaf = torch.from_numpy(np.ascontiguousarray(params.transpose(0, 3, 1, 2)))

    def torch_values():
        with torch.no_grad():
            mixture(leaf)

    def torch_gradient():
        variable = leaf.clone().requires_grad_(True)
        mixture(variable).sum().backward()

    rows["PyTorch eager, log p"] = timed(torch_values)
    rows["PyTorch eager, log p and gradient"] = timed(torch_gradient)
    return rows


def silu_times(batch, repeats, calls=10):
    """{row: ms} of SiLU with its gradient on a batch of the largest
    activations of the resnet (batch × 32×32×32): tf.nn.silu in a graph,
    keras_vae's fused form (a training step's graph), PyTorch eager."""
    import tensorflow as tf
    import torch

    from keras_vae.distributions import fused
    from keras_vae.models import activations

    x = np.random.default_rng(0).normal(size=(batch, 32, 32, WIDTHS[0])).astype("float32")

    def graph(activation):
        @tf.function
        def run(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                total = tf.reduce_sum(activation(x))
            return tape.gradient(total, x)
        return run

    def timed(function, *args):
        return _milliseconds(function, args, repeats, calls)

    tensor = tf.constant(x)
    fused_run = graph(activations.silu)
    with fused.training_step():  # traced as keras_vae's train_step traces it
        fused_run.get_concrete_function(tensor)
    leaf = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

    def torch_gradient():
        variable = leaf.clone().requires_grad_(True)
        torch.nn.functional.silu(variable).sum().backward()

    return {"TensorFlow graph, tf.nn.silu and gradient": timed(graph(tf.nn.silu), tensor),
            "keras_vae fused silu (training step), silu and gradient": timed(fused_run, tensor),
            "PyTorch eager, silu and gradient": timed(torch_gradient)}


def export_sizes(network, work, variants=("none", "int8")):
    """{file: bytes} of a 64×64×3 VAE's exports."""
    import keras_vae
    from keras_vae import _quiet, export

    vae = keras_vae.VAE((64, 64, 3), latent_dim=LATENT, encoder=network, decoder=network,
                        conv_filters=(32, 64, 128) if network == "resnet" else (32, 64),
                        activation="silu", likelihood="discretized_logistic_mixture")
    out = os.path.join(work, network)
    served = export.export_saved_model(vae, out, "vae")
    with _quiet.converter_logs_hidden():
        paths = export.export_litert(vae, out, "vae", variants, batch_sizes=(1, 16))
    sizes = {"SavedModel (graph protobuf)": os.path.getsize(
        os.path.join(served, "saved_model.pb")),
             "SavedModel (variables)": sum(
                 os.path.getsize(os.path.join(root, name))
                 for root, _, names in os.walk(os.path.join(served, "variables"))
                 for name in names)}
    sizes.update({f"LiteRT {'float32' if variant == 'none' else variant}":
                  os.path.getsize(path) for variant, path in paths.items()})
    return sizes, vae.count_params()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="2 steps, 1 repeat, batch 16, float32 LiteRT only")
    parser.add_argument("--out", default="docs/benchmarks/resnet.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.steps, args.repeats = 16, 2, 1
    import torch

    threads = os.cpu_count()
    torch.set_num_threads(threads)
    x = (np.random.default_rng(0).integers(0, 256, (args.batch * args.steps,) + SHAPE)
         / 255.0).astype("float32")
    many = min(10, args.steps)
    float32, bfloat16 = [], []  # (name, images/s, parameters), PyTorch's row last
    for rows, name, jit, per_call, policy in (
            (float32, "Keras 3 + TensorFlow (fit)", False, 1, "float32"),
            (float32, f"Keras 3 + TensorFlow (fit, steps_per_execution={many})", False,
             many, "float32"),
            (float32, "Keras 3 + TensorFlow (fit, XLA)", True, 1, "float32"),
            (bfloat16, "Keras 3 + TensorFlow (fit, mixed_bfloat16)", False, 1,
             "mixed_bfloat16")):
        speed, params = keras_speed(x, args.batch, args.steps, args.repeats, jit, per_call,
                                    policy)
        rows.append((name, speed, params))
    for rows, name, half in ((float32, "(eager)", False),
                             (bfloat16, "(eager, autocast bfloat16)", True)):
        speed, params = torch_resnet.speed(x, args.batch, args.steps, args.repeats, WIDTHS,
                                           BLOCKS, LATENT, COMPONENTS, bfloat16=half)
        rows.append((f"PyTorch {torch.__version__} {name}", speed, params))
    lines = ["# The resnet VAE: training speed and export sizes", "",
             *_report.provenance("resnet_benchmark.py", argv), "",
             f"Training at {SHAPE[0]}×{SHAPE[1]}×{SHAPE[2]}, batch {args.batch}, "
             f"{threads} threads, median of {args.repeats} runs of {args.steps} steps; "
             "each precision against PyTorch in the same precision:", "",
             "| precision | implementation | images/s | parameters | vs PyTorch |",
             "|---|---|---|---|---|"]
    for precision, rows in (("float32", float32), ("bfloat16", bfloat16)):
        reference = rows[-1][1]
        for name, speed, params in rows:
            lines.append(f"| {precision} | {name} | {speed:.1f} | {params:,} | "
                         f"{speed / reference:.2f}× |")
    lines.append("")
    for precision, rows in (("float32", float32), ("bfloat16", bfloat16)):
        best = max(rows[:-1], key=lambda row: row[1])
        lines.append(f"Ratio of the fastest Keras row to PyTorch in {precision}: "
                     f"**{best[1] / rows[-1][1]:.2f}** (goal: at least 1.0).  ")
    lines += ["", f"The mixture's log-probability alone (decoder outputs of {args.batch} "
              "images, K = 5), ms per batch, median of "
              f"{args.repeats} runs of 10 calls:", "", "| implementation | ms |", "|---|---|"]
    lines += [f"| {row} | {ms:.1f} |" for row, ms in
              log_prob_times(args.batch, args.repeats).items()]
    lines += ["", f"SiLU with its gradient on the resnet's largest activations ({args.batch}×32×"
              f"32×{WIDTHS[0]}), ms per call, median of {args.repeats} runs of 10 calls:", "",
              "| implementation | ms |", "|---|---|"]
    lines += [f"| {row} | {ms:.2f} |" for row, ms in silu_times(args.batch, args.repeats).items()]
    lines += ["",
              "Exports of a VAE for 64×64×3 photos (latent 128, logistic mixture, batch "
              "sizes 1 and 16 in each LiteRT file):", "",
              "| network | parameters | file | size | limit |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as work:
        for network in ("resnet", "conv"):
            sizes, params = export_sizes(network, work,
                                         ("none",) if args.quick else ("none", "int8"))
            for file, size in sizes.items():
                limit = "none (a file per variable shard)" if "variables" in file else \
                    f"{size / LIMIT:.2%} of 2 GiB"
                lines.append(f"| {network} | {params:,} | {file} | {size / 2**20:.2f} MiB | "
                             f"{limit} |")
    _report.write(args.out, lines)


if __name__ == "__main__":
    main()
