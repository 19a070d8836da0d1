"""Bits per dimension on held-out colour photographs: VAEs against lossless codecs.

    python benchmarks/photo_benchmark.py --work /tmp/kv-photos --minutes 20

1. Makes the natural-photo dataset (`keras_vae.data.photos`): random 32×32
   crops of scikit-image's colour photos for training, of scikit-learn's two
   sample photos (never seen in training) for testing; TFRecord shards.
2. Codes each of the first `--test-crops` test crops *alone* with the lossless
   codecs a user would otherwise pick: PNG (Pillow, optimize), WebP lossless
   (Pillow, method 6), JPEG-XL lossless (imagecodecs, effort 9) and JPEG 2000
   lossless (imagecodecs, reversible); each decoded file is checked to give
   the crop back exactly. Bits/dim = 8 · bytes / (32 · 32 · 3).
3. Trains each VAE row with `keras-vae train` for `--minutes` of wall clock
   (cosine learning rate), then reports its test bits/dim from the
   importance-sampled log-likelihood with k = `--k` samples (discrete
   convention: −log₂ p(levels) / dims) on the same crops, and the pictures.

Rows: the resnet networks with the factorised logistic mixture, the same
with the "conv" networks, the resnet networks with the per-channel
discretized logistic; the mixture with each pixel's locations also shifted
by the same channel of its 4 causal neighbours, the training crops flipped
and their colours reordered, and the same with 12 neighbours (two rows and
two columns); and the model of examples/photos.yaml: the locations shifted
by every channel of the 4 neighbours and the scales widened by the local
gradients (`keras_vae.distributions.neighbour_context`), so that the gain
of each part shows, trained as the rows before it (rate 2e-3, no clipping:
`EARLIER`) and as examples/photos.yaml now trains it (rate 1e-3, gradients
clipped: the row named "..., clipped"; the benchmark's number is that row
at `--minutes 60`). Results are kept in WORK/results.json as they come; a
run that stops is resumed by the same command. `--rows` trains some rows
only (names as in ROWS), `--minutes` is each row's budget (the report
gives each row's minutes).
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys

import _report  # benchmarks/_report.py, beside this script
import numpy as np
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The model and training of examples/photos.yaml (the dataset and the
#: minutes are this script's).
with open(os.path.join(ROOT, "examples", "photos.yaml")) as _file:
    EXAMPLE = yaml.safe_load(_file)
MODEL = {key: value for key, value in EXAMPLE.items() if key not in ("dataset", "minutes")}
#: How the rows before 2026-12-07 trained (a 45-minute run of this rate
#: diverged; examples/photos.yaml now halves it and clips the gradient).
EARLIER = {**MODEL, "learning_rate": 0.002, "clipnorm": None}
#: The factorised mixture (each pixel coded alone given z), trained on the
#: crops as they are: the first three rows.
FACTORISED = {**EARLIER, "likelihood": "discretized_logistic_mixture",
              "mixture_neighbours": None, "mixture_cross_channel": None,
              "mixture_local_scales": None, "augment": None}
#: The neighbours' shift of each channel by its own channel alone.
SAME_CHANNEL = {**EARLIER, "mixture_cross_channel": False, "mixture_local_scales": False}
#: The row of examples/photos.yaml.
BEST = "resnet + autoregressive mixture (every channel, local scales) + augment, clipped"
ROWS = {
    "resnet + logistic mixture": FACTORISED,
    "conv + logistic mixture": {**FACTORISED, "encoder": "conv", "decoder": "conv",
                                "resnet_blocks": None},
    "resnet + discretized logistic": {**FACTORISED, "likelihood": "discretized_logistic",
                                      "mixture_components": None},
    "resnet + autoregressive mixture + augment": SAME_CHANNEL,
    "resnet + autoregressive mixture (12 neighbours) + augment": {**SAME_CHANNEL,
                                                                  "mixture_neighbours": 12},
    "resnet + autoregressive mixture (every channel, local scales) + augment": EARLIER,
    BEST: MODEL,
}


def codec_bits(crops):
    """{codec: mean bits/dim} of each crop coded alone, each checked lossless."""
    import io

    import imagecodecs
    from PIL import Image

    def pillow(image, **options):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, **options)
        data = buffer.getvalue()
        back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        return data, back

    codecs = {
        "PNG (Pillow, optimize)": lambda im: pillow(im, format="PNG", optimize=True),
        "WebP lossless (Pillow, method 6)": lambda im: pillow(
            im, format="WEBP", lossless=True, quality=100, method=6),
        "JPEG-XL lossless (imagecodecs, effort 9)": lambda im: _decoded(
            imagecodecs.jpegxl_encode(im, lossless=True, effort=9),
            imagecodecs.jpegxl_decode),
        "JPEG 2000 lossless (imagecodecs)": lambda im: _decoded(
            imagecodecs.jpeg2k_encode(im, level=0, reversible=True),
            imagecodecs.jpeg2k_decode),
    }
    table = {}
    for name, code in codecs.items():
        sizes = []
        for image in crops:
            data, back = code(image)
            if not np.array_equal(back, image):
                raise AssertionError(f"{name} did not give the crop back")
            sizes.append(len(data))
        table[name] = 8.0 * float(np.mean(sizes)) / image.size
    return table


def _decoded(data, decode):
    return bytes(data), np.asarray(decode(data))


def train_row(name, model, args, data_dir):
    """Train (or resume) the row's run with `keras-vae train`; its folder."""
    run = os.path.join(args.work, "runs", re.sub(r"[^a-z0-9_]", "", name.replace("+", "_")))
    if os.path.exists(os.path.join(run, "model.keras")):
        return run
    config = {**{k: v for k, v in model.items() if v is not None},
              "dataset": f"tfrecord:{data_dir}", "minutes": args.minutes}
    path = os.path.join(args.work, f"{os.path.basename(run)}.json")
    with open(path, "w") as f:
        json.dump(config, f)
    subprocess.run([sys.executable, "-m", "keras_vae", "train", "--config", path,
                    "--run-dir", run, "--overwrite"], check=True)
    return run


def test_bits(run, crops, k):
    """Importance-sampled test bits/dim (k samples) and the negative ELBO's."""
    import keras

    from keras_vae import evaluation

    vae = keras.saving.load_model(os.path.join(run, "model.keras"))
    x = crops.astype("float32") / 255.0
    log_px = evaluation.log_likelihood(vae, x, num_samples=k, batch_size=10, chunk_size=100)
    elbo = evaluation.negative_elbo(vae, x)
    dims = math.prod(x.shape[1:])
    return (float(evaluation.bits_per_dimension(-np.mean(log_px), dims, "discrete")),
            float(evaluation.bits_per_dimension(np.mean(elbo), dims, "discrete")),
            vae.count_params())


def draws_picture(run, crops, path):
    """Held-out crops, `decode`'s mean of p(x|z) at the posterior mean, and
    an image drawn from that p(x|z) (for the neighbour model: pixel after
    pixel), one row each."""
    import keras

    from keras_vae import plotting

    vae = keras.saving.load_model(os.path.join(run, "model.keras"))
    x = crops[:8].astype("float32") / 255.0
    loc, _ = vae.encode(x)
    params = vae.decoder(loc)
    drawn = vae.likelihood.sample(params, seed=(0, 1))
    images = np.concatenate([x, np.asarray(vae.decode(loc)), np.asarray(drawn)])
    return plotting.image_grid(images, path, columns=8,
                               row_labels=["held out", "decode", "drawn"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/kv-photos")
    parser.add_argument("--minutes", type=float, default=20.0, help="training per row")
    parser.add_argument("--k", type=int, default=1000, help="importance samples")
    parser.add_argument("--test-crops", type=int, default=200)
    parser.add_argument("--train-crops", type=int, default=20_000)
    parser.add_argument("--rows", default=None,
                        help="train these rows only, names separated by ';' (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: 0.2 minutes a row, k = 10, 10 crops")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks",
                                                      "photos.md"))
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes, args.k, args.test_crops, args.train_crops = 0.2, 10, 10, 500
    from keras_vae.data import photos

    arrays = photos.make_arrays(32, args.train_crops, max(args.test_crops, 1000), seed=0)
    data_dir = os.path.join(args.work, "data")
    if not os.path.exists(os.path.join(data_dir, "dataset.json")):
        from keras_vae.runs import convert

        os.makedirs(args.work, exist_ok=True)
        np.savez(os.path.join(args.work, "photos.npz"), **arrays)
        convert(f"npz:{os.path.join(args.work, 'photos.npz')}", data_dir, verbose=False)
    crops = arrays["x_test"][:args.test_crops]
    results_path = os.path.join(args.work, "results.json")
    results = json.load(open(results_path)) if os.path.exists(results_path) else {}
    if "codecs" not in results:
        results["codecs"] = codec_bits(crops)
        _save(results_path, results)
    chosen = args.rows.split(";") if args.rows else list(ROWS)
    unknown = sorted(set(chosen) - set(ROWS))
    if unknown:
        parser.error(f"unknown rows {unknown}; the rows are {list(ROWS)}")
    for name, model in ROWS.items():
        if name in chosen and name not in results:
            run = train_row(name, model, args, data_dir)
            iw, elbo, params = test_bits(run, crops, args.k)
            results[name] = {"iw": iw, "elbo": elbo, "params": params, "run": run,
                             "epochs": _epochs(run)}
            _save(results_path, results)
    best = results.get(BEST)
    if best:
        draws_picture(best["run"], crops, os.path.join(
            os.path.dirname(args.out), "photos-autoregressive-draws.png"))
    _report.write(args.out, report(results, args, argv))


def _minutes(run):
    """Wall-clock minutes of training: config.json (written first) to the
    last model.keras (after the last epoch; the budget is checked at the end
    of each epoch, so a run ends up to one epoch past it)."""
    started = os.path.getmtime(os.path.join(run, "config.json"))
    return (os.path.getmtime(os.path.join(run, "model.keras")) - started) / 60


def _epochs(run):
    history = os.path.join(run, "history.csv")
    with open(history) as f:
        return max(0, sum(1 for _ in f) - 1)


def _save(path, results):
    with open(path + ".partial", "w") as f:
        json.dump(results, f, indent=1)
    os.replace(path + ".partial", path)


def report(results, args, argv):
    lines = ["# Bits per dimension on held-out colour photos", "",
             *_report.provenance("photo_benchmark.py", argv), "",
             f"Test: the first {args.test_crops} 32×32 crops of scikit-learn's china and "
             "flower photos (never seen in training), each coded alone. Models: trained "
             f"for the minutes of the table on {args.train_crops} crops of scikit-image's "
             f"colour photos; bits/dim from the importance-sampled log-likelihood with "
             f"k = {args.k} (and from the negative ELBO, an upper bound).", "",
             "| coder | test bits/dim | ELBO bits/dim | parameters | epochs | minutes |",
             "|---|---|---|---|---|---|"]
    for name, bits in sorted(results["codecs"].items(), key=lambda item: item[1]):
        lines.append(f"| {name} | {bits:.3f} | | | | |")
    for name in ROWS:
        if name in results:
            row = results[name]
            lines.append(f"| VAE: {name} | {row['iw']:.3f} | {row['elbo']:.3f} | "
                         f"{row['params']:,} | {row['epochs']} | {_minutes(row['run']):.1f} |")
    best_codec = min(results["codecs"].values())
    models = {name: results[name]["iw"] for name in ROWS if name in results}
    if models:
        best = min(models, key=models.get)
        verdict = "fewer" if models[best] < best_codec else "more"
        lines += ["", f"The best VAE ({best}) needs {verdict} bits per dimension than the "
                  f"best codec ({models[best]:.3f} against {best_codec:.3f})."]
    return lines


if __name__ == "__main__":
    main()
