"""Training images against test images, scored the same ways after a short
training run: does a model's test bound part from its training bound, and
is the cause the data, the evaluation path or the model?

    python benchmarks/generalization_gap.py --model ladder --minutes 6 \\
        --out docs/benchmarks/gap-ladder.md
    python benchmarks/generalization_gap.py --model wide_two_layer --minutes 6 \\
        --out docs/benchmarks/gap-wide-two-layer.md
    python benchmarks/generalization_gap.py --model best --minutes 6 \\
        --out docs/benchmarks/gap-best.md
    python benchmarks/generalization_gap.py --model ladder --minutes 6 --train-images 5000 \
        --out docs/benchmarks/gap-ladder-5000.md
    python benchmarks/generalization_gap.py --quick --out /tmp/gap.md   # CI smoke run

Trains a model of `likelihood_benchmark.py` (`--model`) with that script's
recipe (batch 100, Adam at 1e-3, XLA, each training image binarized afresh
every epoch) for `--minutes`, then takes 2000 training and 2000 test images
drawn at random (seed 0) and binarized once with the same seed, the way the
test set is. Each set is scored by the package's evaluator
(`evaluation.negative_elbo`, and `evaluation.log_likelihood` with k = 500
on its first 500 images) and by Keras's `evaluate` (reconstruction + KL)
with the training step's XLA compilation and without it. If training and
evaluation computed different things, the columns of one set would
disagree; if the test images were only harder, the control models would
show the same gap. With `--train-images N` the model trains on the first N
training images only (and the training set is drawn from them): many
epochs over few images, where a model's readiness to overfit shows within
minutes.
"""

import argparse
import time

import _report  # benchmarks/_report.py, beside this script
import keras
import likelihood_benchmark  # its models and their recipe
import numpy as np

import keras_vae

MODELS = {
    **likelihood_benchmark.MODELS,
    # The ladder's hierarchy and widths with bottom-up inference: the control.
    "wide_two_layer": lambda: {"objective": "iwae", "num_samples": 5,
                               "hidden_units": (500, 500), "latent_dims": (100, 50)},
}


def _fixed(images, count, seed=0):
    """`count` images drawn at random and binarized once (as the test set is)."""
    chosen = np.random.default_rng(seed).choice(len(images), count, replace=False)
    dataset = keras_vae.data.make_dataset(images[np.sort(chosen)], 1000, binarize="dynamic",
                                          training=False, seed=seed)
    return np.concatenate(list(dataset.as_numpy_iterator()))


def _scores(vae, x, k):
    """The set's scores: the evaluator's, then Keras's with and without XLA."""
    row = [keras_vae.evaluation.negative_elbo(vae, x).mean(),
           -keras_vae.evaluation.log_likelihood(vae, x[:500], num_samples=k,
                                                verbose=False).mean()]
    for jit in (True, False):
        vae.compile(optimizer=vae.optimizer, jit_compile=jit)
        logs = vae.evaluate(x, batch_size=100, verbose=0, return_dict=True)
        row.append(logs["reconstruction_loss"] + logs["kl_loss"])
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="ladder")
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--train-images", type=int, default=None,
                        help="train on the first N training images (default: all 60 000)")
    parser.add_argument("--quick", action="store_true",
                        help="a few steps on 2000 images, 100 images per set, k = 20")
    parser.add_argument("--out", default="docs/benchmarks/gap.md")
    args = parser.parse_args(argv)
    train_limit, count, k = ((2000, 100, 20) if args.quick
                             else (args.train_images, min(2000, args.train_images or 2000), 500))
    minutes = 0.1 if args.quick else args.minutes

    keras.utils.set_random_seed(0)
    (x_train, _), (x_test, _) = keras_vae.data.load_mnist()
    train = keras_vae.data.make_dataset(x_train[:train_limit], 100, binarize="dynamic",
                                        training=True, seed=0)
    options = {"hidden_units": (200, 200), **MODELS[args.model]()}
    vae = likelihood_benchmark._model(options)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
    budget = keras_vae.callbacks.TimeBudget(minutes)
    start = time.time()
    vae.fit(train, epochs=100000, callbacks=[budget], verbose=2)
    train_minutes = (time.time() - start) / 60
    rows = {name: _scores(vae, _fixed(images, count), k)
            for name, images in (("training", x_train[:train_limit]), ("test", x_test))}
    lines = [
        f"# Training against test images: `{args.model}`", "",
        *_report.provenance("generalization_gap.py", argv), "",
        f"Model: {options}; {budget.epochs} epochs on {len(x_train[:train_limit])} training "
        f"images in {train_minutes:.1f} min. Each set: "
        f"{count} images drawn at random, binarized once (seed 0). Nats per image.", "",
        f"| images | negative ELBO (evaluator) | NLL, k = {k} (first 500) | Keras evaluate, "
        "XLA | Keras evaluate, no XLA |", "|---|---|---|---|---|",
    ]
    lines += [f"| {name} | " + " | ".join(f"{v:.2f}" for v in row) + " |"
              for name, row in rows.items()]
    gap = np.subtract(rows["test"], rows["training"])
    lines.append("| test − training | " + " | ".join(f"{v:+.2f}" for v in gap) + " |")
    _report.write(args.out, lines)


if __name__ == "__main__":
    main()
