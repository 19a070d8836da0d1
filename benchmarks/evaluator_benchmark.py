"""Speed of the importance-sampled log-likelihood (k = 5000), and whether a
faster variant keeps the estimate.

    python benchmarks/evaluator_benchmark.py --run runs/best --examples 500 \
        --out docs/benchmarks/evaluator.md
    python benchmarks/evaluator_benchmark.py --quick --out /tmp/evaluator.md   # CI smoke run

Runs `keras_vae.evaluation.log_likelihood` on the first N test images of a
run with two seeds for each variant: TFP's `Bernoulli.log_prob` (the
evaluator before issue 17), the package's own `Bernoulli.log_prob`
(Σ x·l − softplus(l), one logarithm per 16 pixels; the same value in
fewer passes), and
`precision="bfloat16"` (`keras_vae.evaluation.decoding.Bfloat16Decoding`: the MLP
decoder's matrix products in bfloat16, its biases, activations and the
log-probability in float32 compiled by XLA; it moves the estimate
slightly). The variants take turns, seed by seed, so that a slow spell of
the machine falls on all of them; each timed run follows an untimed call
that traces and compiles the variant's chunk, so the seconds are the rate
at which a whole test set is evaluated (which pays that once). The Monte
Carlo standard error of the mean comes from the two seeds' per-image
estimates: std(ll₀ − ll₁) / √(2N); the change against "before" uses the
same seeds, so it is the variant's own difference, not Monte-Carlo noise.
TensorFlow's threads are fixed (TF_NUM_INTEROP_THREADS=1,
TF_NUM_INTRAOP_THREADS=2).
"""

import os

os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "2")

import argparse  # noqa: E402
import time  # noqa: E402

import _report  # noqa: E402  (benchmarks/_report.py, beside this script)
import numpy as np  # noqa: E402

from keras_vae import evaluation, runs  # noqa: E402
from keras_vae.distributions import likelihoods  # noqa: E402
from keras_vae.runs import build  # noqa: E402
from keras_vae.runs import config as config_lib  # noqa: E402


def _variant(name):
    """Bernoulli.log_prob as the variant has it (the benchmark's process only),
    and the `precision` the variant passes to the evaluator."""
    own = likelihoods.Bernoulli.__dict__.get("_own_log_prob") or likelihoods.Bernoulli.log_prob
    likelihoods.Bernoulli._own_log_prob = own
    likelihoods.Bernoulli.log_prob = (likelihoods.Likelihood.log_prob if name == "tfp" else own)
    # The evaluator keeps its traced chunk per (model, precision); "tfp" and
    # "package" share both, so each variant traces its own afresh.
    evaluation.estimates._chunk_log_weights.cache_clear()
    return "bfloat16" if name == "bfloat16" else "float32"


VARIANTS = {
    "tfp": "TFP Bernoulli.log_prob (before)",
    "package": "Bernoulli.log_prob = Σ x·l − softplus(l) (now, float32)",
    "bfloat16": "now, precision=\"bfloat16\": bfloat16 products, XLA elementwise",
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a finished run with an MLP decoder (default: quick)")
    parser.add_argument("--examples", type=int, default=500)
    parser.add_argument("--k", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="a quick model, 50 images, k=500")
    parser.add_argument("--out", default="docs/benchmarks/evaluator.md")
    args = parser.parse_args(argv)
    examples, k = (50, 500) if args.quick else (args.examples, args.k)
    if args.run:
        config, vae = runs.load_run(args.run)
    else:
        config = config_lib.resolve({"limit": 2000, "epochs": 1, "hidden_units": [64]})
        run_dir = os.path.join("/tmp", f"evaluator-benchmark-{os.getpid()}")
        runs.train(config, run_dir, overwrite=True, verbose=0)
        config, vae = runs.load_run(run_dir)
    x = build.prepared_images(config, runs.load_splits(config).test.take(examples))
    estimates = {name: [] for name in VARIANTS}
    seconds = {name: [] for name in VARIANTS}
    for seed in (0, 1):  # variants in turn, so that a slow spell of the machine hits all
        for name in VARIANTS:
            precision = _variant(name)
            # Untimed: traces and compiles the variant's chunk, which the
            # timed call then reuses (a whole test set pays this once).
            evaluation.log_likelihood(vae, x[:100], num_samples=250, verbose=False,
                                      precision=precision)
            start = time.perf_counter()
            estimates[name].append(evaluation.log_likelihood(
                vae, x, num_samples=k, seed=seed, verbose=False, precision=precision))
            seconds[name].append(time.perf_counter() - start)
    _variant("package")
    rows = []
    for name, label in VARIANTS.items():
        per_seed = estimates[name]
        error = np.std(per_seed[0] - per_seed[1]) / np.sqrt(2 * examples)
        rows.append((label, np.mean(seconds[name]), -np.mean(per_seed[0]),
                     -np.mean(per_seed[1]), error, per_seed))
    base = rows[0]
    lines = ["# The importance-sampled log-likelihood: speed and estimate", "",
             *_report.provenance("evaluator_benchmark.py", argv),
             f"Model: {args.run or 'quick model'}; the first {examples} test images, k = {k}; "
             "threads fixed (1 inter-op, 2 intra-op).", "",
             "| variant | seconds per run | × | NLL seed 0 | NLL seed 1 | MC std. error | "
             "change of NLL against before (same seeds) |", "|---|---|---|---|---|---|---|"]
    for label, mean_seconds, nll0, nll1, error, per_seed in rows:
        change = np.mean([np.mean(b - e) for b, e in zip(base[5], per_seed, strict=True)])
        lines.append(f"| {label} | {mean_seconds:.3g} | {base[1] / mean_seconds:.2f}× | "
                     f"{nll0:.3f} | "
                     f"{nll1:.3f} | {error:.3f} | {change:+.4f} |")
    lines += ["", f"For the whole test set (10 000 images) multiply the seconds by "
              f"{10000 / examples:g}."]
    _report.write(args.out, lines)


if __name__ == "__main__":
    main()
