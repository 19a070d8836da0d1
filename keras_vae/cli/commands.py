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
    keras-vae fit-detector runs/mnist --false-positive-rate 0.01 --score elbo
    keras-vae detect runs/mnist npz:new_images.npz
    keras-vae convert images:photos/ data/photos --image-size 64x64 --shard-size 10000
"""

import datetime
import os
import sys

from keras_vae.cli import failures
from keras_vae.cli.parser import PICTURE_COMMANDS, build_parser
from keras_vae.runs import config as config_lib


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
    """Run the command; the paths it wrote."""
    if args.command == "train":
        return _train(args, runs, *prepared)
    if args.command in _JOBS:
        return _JOBS[args.command](args, runs)
    name = PICTURE_COMMANDS[args.command][0]
    options = {k: v for k, v in vars(args).items()
               if k in ("num", "seed", "steps", "sampler", "max_minutes", "max_memory")
               and v is not None}
    return [runs.draw(args.run, name, **options)]


def _train(args, runs, config, strategy):
    if args.resume:
        return runs.train(config, args.resume, resume=True, strategy=strategy)
    run_dir = args.run_dir = args.run_dir or _default_run_dir(config)
    print(f"Training into {run_dir}")
    return runs.train(config, run_dir, overwrite=args.overwrite, strategy=strategy)


def _export(args, runs):
    options = {"batch_sizes": _sizes(args.batch_sizes)} if args.batch_sizes else {}
    if args.web_runtime:
        options["web_runtime"] = args.web_runtime
    return runs.export_model(
        args.model, args.out, _names(args.formats),
        _names(args.quantize) if args.quantize else None,
        args.model_name, args.version, args.overwrite, **options)


def _convert(args, runs):
    return runs.convert(args.source, args.out_dir, shard_size=args.shard_size,
                        data_dir=args.data_dir, seed=args.seed, overwrite=args.overwrite,
                        max_minutes=args.max_minutes, max_memory=args.max_memory,
                        image_size=config_lib.image_size({"image_size": args.image_size}))


def _fit_sampler(args, runs):
    components = args.components
    if components != "auto":
        try:
            components = int(components)
        except ValueError:
            raise ValueError(f"Invalid --components {components!r}: expected a "
                             "positive integer or auto.") from None
    return runs.fit_sampler(args.run, args.sampler, components)


def _evaluate(args, runs):
    result = runs.evaluate(args.run, batch_size=args.batch_size,
                           iw_samples=args.iw_samples, anomaly=args.anomaly,
                           anomaly_quantile=args.anomaly_quantile,
                           sample_quality=args.sample_quality,
                           iw_precision=args.iw_precision, max_minutes=args.max_minutes,
                           max_memory=args.max_memory)
    print(runs.evaluation_table(result))
    return [runs.path(args.run, "evaluation")]


def _serve(args, runs):
    try:
        runs.serve_web(args.run, args.port, args.web_runtime)
    except failures.Stopped:  # Ctrl-C or SIGTERM: serving ends, nothing is lost
        print("Stopped.", flush=True)
    return []


def _fit_detector(args, runs):
    from keras_vae.runs import costs

    return runs.fit_detector(args.run, args.normal, args.false_positive_rate, args.score,
                             args.num_samples, args.sampler,
                             costs.Limits(args.max_minutes, args.max_memory))


def _detect(args, runs):
    from keras_vae.runs import costs

    written = runs.detect(args.run, args.dataset, args.out, args.split,
                          costs.Limits(args.max_minutes, args.max_memory))
    print(f"Scores and flags: {written[0]}")
    return written


_JOBS = {"export": _export, "web": _serve, "convert": _convert,
         "fit-sampler": _fit_sampler, "evaluate": _evaluate,
         "fit-detector": _fit_detector, "detect": _detect}


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
