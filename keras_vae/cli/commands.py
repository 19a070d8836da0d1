"""The `keras-vae` command: train, evaluate and draw pictures of runs.

    keras-vae train --config run.yaml --epochs 5 --run-dir runs/mnist
    keras-vae train --resume runs/mnist
    keras-vae evaluate runs/mnist
    keras-vae sample runs/mnist --num 64
    keras-vae reconstruct | interpolate | latent-map runs/mnist
    keras-vae export runs/mnist --formats saved_model,tflite --quantize none,int8
    keras-vae export runs/mnist --formats web && keras-vae web runs/mnist
    keras-vae fit-sampler runs/mnist --sampler gmm --components auto
    keras-vae sample runs/mnist --sampler gmm
"""

import argparse
import datetime
import os
import sys

from keras_vae.cli import failures
from keras_vae.runs import config as config_lib

_PICTURE_COMMANDS = {
    "sample": ("samples", "a grid of samples from the prior"),
    "reconstruct": ("reconstructions", "test images above their reconstructions"),
    "interpolate": ("interpolation", "a strip between two test images"),
    "latent-map": ("latent_map", "the test set's posterior means, by label"),
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-vae", description="Variational autoencoders with Keras 3.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_train(commands)
    _add_evaluate(commands)
    _add_export(commands)
    _add_pictures(commands)
    _add_fit_sampler(commands)
    _add_web(commands)
    return parser


def _add_web(commands):
    web = commands.add_parser(
        "web", help="serve the run's web page (generation in the browser) on 127.0.0.1")
    web.add_argument("run", help="a run directory (its page is exported first if missing)")
    web.add_argument("--port", type=int, default=8000, help="the port (default: 8000)")
    web.add_argument("--web-runtime", help="where the page loads LiteRT.js from, when "
                     "it is exported here (see keras-vae export --help)")


def _add_fit_sampler(commands):
    fit = commands.add_parser(
        "fit-sampler", help="fit a sampler of z to the training codes (kept in model.keras)")
    fit.add_argument("run")
    fit.add_argument("--sampler", default="gmm", help="gmm: a Gaussian mixture (default)")
    fit.add_argument("--components", default="auto",
                     help="mixture components, or auto: the best held-out likelihood")


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
    evaluate.add_argument("--batch-size", type=int, default=500)
    evaluate.add_argument("--iw-samples", type=int, default=0, metavar="K",
                          help="importance-sampled log-likelihood with K samples "
                               "(5000 for reported numbers; 0 = skip)")
    evaluate.add_argument("--iw-precision", choices=("float32", "bfloat16"),
                          default="float32",
                          help="the decoder's matrix products in the importance-sampled "
                               "log-likelihood: bfloat16 is about twice as fast on CPUs "
                               "with AMX or AVX512-BF16 units (an MLP decoder; the "
                               "estimate moves by a fraction of its Monte-Carlo error)")
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
    export.add_argument("--version", type=int, help="SavedModel version (default: next)")
    export.add_argument("--overwrite", action="store_true",
                        help="replace an existing version or LiteRT file")


def _add_pictures(commands):
    for command, (_, text) in _PICTURE_COMMANDS.items():
        picture = commands.add_parser(command, help=f"draw {text}")
        picture.add_argument("run")
        if command in ("sample", "reconstruct"):
            picture.add_argument("--num", type=int, default=16 if command == "sample" else 10)
        if command == "sample":
            picture.add_argument("--seed", type=int, default=0)
            picture.add_argument("--sampler", default=None,
                                 help="prior (default) or a sampler from fit-sampler")
        if command == "interpolate":
            picture.add_argument("--steps", type=int, default=10)


def main(argv=None):
    from keras_vae._quiet import tensorflow_banners_hidden

    # The options' defaults and valid names come from the model, which
    # imports TensorFlow: its start-up banners are filtered out.
    with tensorflow_banners_hidden():
        parser = build_parser()
    args = parser.parse_args(argv)
    previous = failures.raise_on_signals()
    try:
        with tensorflow_banners_hidden():
            from keras_vae import runs

            # Starting TensorFlow's devices prints banners too. A multi-worker
            # strategy must be created before anything else starts them.
            prepared = _prepare(args, runs)
        written = _run(args, runs, prepared)
    except Exception as error:  # each kind gets its message; unknown ones show
        return _fail(error, args)
    finally:
        failures.restore_signals(previous)
    _summary(written)
    return 0


def _fail(error, args):
    from keras_vae.training.callbacks import NonFiniteLossError

    if isinstance(error, NonFiniteLossError):
        print(f"keras-vae {args.command}: {error} model.keras holds the last "
              "finished epoch.", file=sys.stderr)
        return 3
    run_dir = getattr(args, "resume", None) or getattr(args, "run_dir", None)
    described = failures.describe(error, args.command, run_dir)
    if described is None:
        raise error
    message, code = described
    print(f"keras-vae {args.command}: error: {message}", file=sys.stderr)
    return code


def _prepare(args, runs):
    """For `train`: the resolved config and its strategy; else start devices."""
    import tensorflow as tf

    if args.command != "train":
        tf.config.list_logical_devices()
        return None
    config = _train_config(args, runs)
    from keras_vae.training import distribute

    return config, distribute.get_strategy(config["strategy"])


def _run(args, runs, prepared):
    if args.command == "train":
        config, strategy = prepared
        if args.resume:
            return runs.train(config, args.resume, resume=True, strategy=strategy)
        run_dir = args.run_dir = args.run_dir or _default_run_dir(config)
        print(f"Training into {run_dir}")
        return runs.train(config, run_dir, overwrite=args.overwrite, strategy=strategy)
    if args.command == "export":
        options = {"batch_sizes": _sizes(args.batch_sizes)} if args.batch_sizes else {}
        if args.web_runtime:
            options["web_runtime"] = args.web_runtime
        return runs.export_model(
            args.model, args.out, _names(args.formats),
            _names(args.quantize) if args.quantize else None,
            args.model_name, args.version, args.overwrite, **options)
    if args.command == "web":
        return _serve(args, runs)
    if args.command == "fit-sampler":
        components = args.components
        if components != "auto":
            try:
                components = int(components)
            except ValueError:
                raise ValueError(f"Invalid --components {components!r}: expected a "
                                 "positive integer or auto.") from None
        return runs.fit_sampler(args.run, args.sampler, components)
    if args.command == "evaluate":
        result = runs.evaluate(args.run, batch_size=args.batch_size,
                               iw_samples=args.iw_samples, anomaly=args.anomaly,
                               anomaly_quantile=args.anomaly_quantile,
                               sample_quality=args.sample_quality,
                               iw_precision=args.iw_precision)
        print(runs.evaluation_table(result))
        return [runs.path(args.run, "evaluation")]
    name = _PICTURE_COMMANDS[args.command][0]
    options = {k: v for k, v in vars(args).items()
               if k in ("num", "seed", "steps", "sampler") and v is not None}
    return [runs.draw(args.run, name, **options)]


def _serve(args, runs):
    try:
        runs.serve_web(args.run, args.port, args.web_runtime)
    except failures.Stopped:  # Ctrl-C or SIGTERM: serving ends, nothing is lost
        print("Stopped.", flush=True)
    return []


def _names(text):
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _sizes(text):
    try:
        return tuple(int(size) for size in _names(text))
    except ValueError:
        raise ValueError(f"Invalid --batch-sizes {text!r}: expected integers separated "
                         "by commas, such as 1,16,64.") from None


def _train_config(args, runs):
    flags = {k: v for k, v in vars(args).items()
             if k in config_lib.options() and v is not None}
    if args.resume:
        if flags or args.config or args.run_dir:
            raise ValueError(
                "--resume continues a run with its own config.json: pass no "
                f"other options (received {sorted(flags) or args.config or args.run_dir})."
            )
        return runs.read_config(args.resume)
    file_values = config_lib.read_file(args.config) if args.config else {}
    return config_lib.resolve(file_values, flags)


def _default_run_dir(config):
    name = config["dataset"].split(":")[0]
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"{name}-{stamp}")


def _summary(written):
    if not written:
        return
    print("\nFiles written:")
    for item in written:
        if os.path.isdir(item):
            size = sum(os.path.getsize(os.path.join(root, f))
                       for root, _, files in os.walk(item) for f in files)
            print(f"  {item}/  ({size / 1024:.0f} KiB)")
        else:
            print(f"  {item}  ({os.path.getsize(item) / 1024:.0f} KiB)")


if __name__ == "__main__":
    sys.exit(main())
