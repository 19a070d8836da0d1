"""The `keras-vae` command's arguments: one subparser per command."""

import argparse

from keras_vae.runs import config as config_lib

PICTURE_COMMANDS = {
    "sample": ("samples", "a grid of samples from the prior"),
    "reconstruct": ("reconstructions", "test images above their reconstructions"),
    "interpolate": ("interpolation", "a strip between two test images"),
    "latent-map": ("latent_map", "the test set's posterior means, by label"),
}


#: The largest integer an option takes: a 64-bit count (NumPy's and TensorFlow's).
LARGEST_INTEGER = 2**63 - 1


def integer(text):
    """An option's integer, at most `LARGEST_INTEGER` in size (a longer one
    overflowed the cost estimates' floats)."""
    value = int(text)
    if abs(value) > LARGEST_INTEGER:
        raise argparse.ArgumentTypeError(
            f"{text[:24]}{'…' if len(text) > 24 else ''} ({len(text.strip())} digits) is too "
            f"large: expected an integer of at most {LARGEST_INTEGER} in size.")
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-vae", description="Variational autoencoders with Keras 3.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_train(commands)
    _add_evaluate(commands)
    _add_export(commands)
    _add_pictures(commands)
    _add_fit_sampler(commands)
    _add_detector(commands)
    _add_web(commands)
    _add_convert(commands)
    return parser


def _add_convert(commands):
    convert = commands.add_parser(
        "convert", help="write a dataset as TFRecord shards (then --dataset tfrecord:OUT_DIR)")
    convert.add_argument("source", help="mnist, tfds:<name>, npz:<path>, images:<dir> or "
                         "tfrecord:<dir>")
    convert.add_argument("out_dir", help="the folder of shards and dataset.json")
    convert.add_argument("--shard-size", type=integer, default=10_000,
                         help="images per shard (default: 10000)")
    convert.add_argument("--image-size", help="resize images:<dir> sources to HEIGHTxWIDTH")
    convert.add_argument("--data-dir", help="MNIST folder, or the TFDS data directory")
    convert.add_argument("--seed", type=integer, default=0,
                         help="fixes the test split of a source without one")
    convert.add_argument("--overwrite", action="store_true",
                         help="replace a dataset converted there before")
    _add_limits(convert, "a conversion", minutes=None)


def _add_web(commands):
    web = commands.add_parser(
        "web", help="serve the run's web page (generation in the browser) on 127.0.0.1")
    web.add_argument("run", help="a run directory (its page is exported first if missing)")
    web.add_argument("--port", type=integer, default=8000, help="the port (default: 8000)")
    web.add_argument("--web-runtime", help="where the page loads LiteRT.js from, when "
                     "it is exported here (see keras-vae export --help)")


def _add_fit_sampler(commands):
    fit = commands.add_parser(
        "fit-sampler", help="fit a sampler of z to the training codes (kept in model.keras)")
    fit.add_argument("run")
    fit.add_argument("--sampler", default="gmm", help="gmm: a Gaussian mixture (default)")
    fit.add_argument("--components", default="auto",
                     help="mixture components, or auto: the best held-out likelihood")


def _add_detector(commands):
    from keras_vae.models import detectors, scores

    fit = commands.add_parser(
        "fit-detector", help="fit an anomaly detector's threshold on normal data (kept in "
        "model.keras and exported)")
    fit.add_argument("run")
    fit.add_argument("--normal", metavar="DATASET",
                     help="held-out normal data: the test split of DATASET (default: the "
                          "run's own test split)")
    fit.add_argument("--false-positive-rate", type=float, default=0.01, metavar="RATE",
                     help="the share of normal data flagged (default: 0.01)")
    fit.add_argument("--score", default="elbo", choices=scores.names(),
                     help="elbo (default), log_likelihood, reconstruction or latent")
    fit.add_argument("--sampler", help="the latent score's density: a sampler from "
                     "fit-sampler (e.g. gmm; default: the prior)")
    fit.add_argument("--num-samples", type=integer, default=detectors.SAMPLES, metavar="K",
                     help=f"fixed samples of z per score (default: {detectors.SAMPLES})")
    detect = commands.add_parser(
        "detect", help="score and flag every example of a dataset with the run's detector")
    detect.add_argument("run")
    detect.add_argument("dataset", help="mnist, npz:<path>, images:<dir>, tfrecord:<dir>, ...")
    detect.add_argument("--split", default="all", choices=("all", "train", "test"))
    detect.add_argument("--out", help="output folder (default: RUN/detect/<dataset>)")
    _add_limits(fit, "fitting a detector")
    _add_limits(detect, "scoring")


def _add_train(commands):
    train = commands.add_parser("train", help="train a VAE into a run directory")
    train.add_argument("--config", help="a YAML or JSON file of options")
    train.add_argument("--run-dir", help="where to write (default runs/DATASET-TIME)")
    train.add_argument("--overwrite", action="store_true",
                       help="replace an existing run directory")
    train.add_argument("--resume", metavar="RUN",
                       help="continue the interrupted training of RUN")
    for name, (_, default, text) in config_lib.options().items():
        train.add_argument("--" + name.replace("_", "-"), dest=name, default=None,
                           metavar=name.upper(),
                           help=f"{text} (default: {default})".replace("%", "%%"))


def _add_evaluate(commands):
    evaluate = commands.add_parser("evaluate", help="test-set ELBO of a run")
    evaluate.add_argument("run")
    evaluate.add_argument("--batch-size", type=integer, default=500)
    evaluate.add_argument("--iw-samples", type=integer, default=0, metavar="K",
                          help="importance-sampled log-likelihood with K samples "
                               "(5000 for reported numbers; 0 = skip)")
    evaluate.add_argument("--iw-precision", choices=("float32", "bfloat16"),
                          default="float32",
                          help="the decoder's matrix products in the importance-sampled "
                               "log-likelihood: bfloat16 is about twice as fast on CPUs "
                               "with AMX or AVX512-BF16 units (an MLP decoder; the "
                               "estimate moves by a fraction of its Monte-Carlo error)")
    _add_limits(evaluate, "an evaluation")
    evaluate.add_argument("--anomaly", metavar="DATASET",
                          help="score another dataset's test split against this one")
    evaluate.add_argument("--anomaly-quantile", type=float, default=0.99)
    evaluate.add_argument("--sample-quality", action="store_true",
                          help="Fréchet distance and precision/recall of samples "
                               "(MNIST-like 28x28 images; prior and fitted samplers)")


def _add_export(commands):
    export = commands.add_parser(
        "export", help="SavedModel for TF Serving and LiteRT files for devices")
    export.add_argument("model", metavar="RUN_OR_MODEL",
                        help="a run directory or a .keras file")
    export.add_argument("--out", help="output folder (default: RUN/export)")
    export.add_argument("--formats", default="saved_model,tflite",
                        help="saved_model, tflite and/or web (a page that generates in "
                             "the browser, into OUT/web; default: saved_model,tflite)")
    export.add_argument("--quantize",
                        help="LiteRT variants: none (float32), float16, dynamic, int8 "
                             "(default: all four; for the web page none,int8)")
    export.add_argument("--web-runtime",
                        help="where the web page loads LiteRT.js from: a URL with "
                             "{package} (default: a pinned CDN release) or a local "
                             "node_modules/@litertjs folder, copied for offline use")
    export.add_argument("--batch-sizes",
                        help="the fixed batch sizes of the LiteRT signatures, every "
                             "runtime needs fixed shapes (default: 1,16,64)")
    export.add_argument("--model-name", default="vae", help="the served model's name")
    export.add_argument("--version", type=integer, help="SavedModel version (default: next)")
    export.add_argument("--overwrite", action="store_true",
                        help="replace an existing version or LiteRT file")


def _add_pictures(commands):
    for command, (_, text) in PICTURE_COMMANDS.items():
        picture = commands.add_parser(command, help=f"draw {text}")
        picture.add_argument("run")
        if command in ("sample", "reconstruct"):
            picture.add_argument("--num", type=integer, default=16 if command == "sample" else 10)
        if command == "sample":
            picture.add_argument("--seed", type=integer, default=0)
            picture.add_argument("--sampler", default=None,
                                 help="prior (default) or a sampler from fit-sampler")
        if command == "interpolate":
            picture.add_argument("--steps", type=integer, default=10)
        _add_limits(picture, "a picture")


def _add_limits(parser, work, minutes=60.0):
    """`--max-minutes` and `--max-memory`: the limits of `keras_vae.runs.costs`."""
    parser.add_argument("--max-minutes", type=float, default=minutes, metavar="M",
                        help=f"refuse {work} estimated to take longer (estimated first, "
                             f"from a measured speed; default "
                             f"{'no limit' if minutes is None else f'{minutes:g}'})")
    parser.add_argument("--max-memory", type=float, default=None, metavar="GIB",
                        help=f"refuse {work} estimated to need more memory, in GiB "
                             "(default: 80%% of this machine's memory)")
