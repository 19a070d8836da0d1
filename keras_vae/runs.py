"""Training runs: one directory holds everything a run produced.

    RUN/config.json          the resolved configuration
    RUN/model.keras          the model after the last finished epoch (atomic)
    RUN/history.csv          one row of metrics per finished epoch
    RUN/tensorboard/         scalars, and images of samples and reconstructions
    RUN/samples.png          16 samples from the prior
    RUN/reconstructions.png  test images above their reconstructions
    RUN/interpolation.png    decoded straight line between two test images
    RUN/latent_map.png       posterior means of the test set, by label
    RUN/training_curves.png  loss, reconstruction and KL per epoch
    RUN/evaluation.json      written by `evaluate`
    RUN/backup/              the last epoch's state while training runs
"""

import hashlib
import json
import os
import shutil
import tempfile

import keras
import numpy as np

from keras_vae import callbacks as callbacks_lib
from keras_vae import config as config_lib
from keras_vae import data, distribute, evaluation, export, plotting
from keras_vae.conditional import ConditionalVAE
from keras_vae.model import VAE

PICTURES = ("samples", "reconstructions", "interpolation", "latent_map",
            "training_curves")
_MAX_MAP_POINTS = 5000


def path(run_dir, name):
    files = {"config": "config.json", "model": "model.keras",
             "history": "history.csv", "evaluation": "evaluation.json",
             "tensorboard": "tensorboard", "backup": "backup"}
    return os.path.join(run_dir, files.get(name, f"{name}.png"))


# === Training ===
def train(config, run_dir, overwrite=False, resume=False, verbose="auto",
          callbacks=(), strategy=None):
    """Train a VAE as `config` says; return the paths written, in order.

    Everything is checked and built before the run directory is touched, so
    a bad option leaves no half-made run behind. `model.keras` is rewritten
    after every epoch; `backup/` holds what `resume` needs until training
    ends. Under MultiWorkerMirroredStrategy only the chief writes `run_dir`;
    the other workers write to their own folder in the system's temporary
    directory (see `worker_dir`). `strategy` defaults to the config's.
    """
    if resume:
        config = read_config(run_dir)
    strategy = strategy or distribute.get_strategy(config["strategy"])
    chief = distribute.is_chief(strategy)
    if not chief:
        run_dir = worker_dir(run_dir, strategy)
    if resume and chief:
        _check_resumable(run_dir)
    elif not resume and chief:
        _check_new_run_dir(run_dir, overwrite)
    keras.utils.set_random_seed(config["seed"])
    keras.mixed_precision.set_global_policy(
        "float32" if config["mixed_precision"] == "none" else config["mixed_precision"])
    splits = load_splits(config)
    config = _with_num_classes(config, splits)
    train_set = _dataset(config, splits.x_train, training=True, labels=splits.y_train,
                         drop_remainder=config["drop_remainder"] or distribute.is_tpu(strategy))
    test_set = _dataset(config, splits.x_test, training=False, labels=splits.y_test)
    with strategy.scope():
        vae = build_model(config, splits.image_shape)
        vae.compile(optimizer=_optimizer(config), jit_compile=config["jit_compile"],
                    steps_per_execution=config["steps_per_execution"])
    if not resume:
        shutil.rmtree(run_dir, ignore_errors=True)
        os.makedirs(run_dir)
        callbacks_lib.write_atomically(path(run_dir, "config"),
                                       json.dumps(config, indent=2) + "\n")
    vae.fit(train_set, epochs=config["epochs"], validation_data=test_set,
            callbacks=_callbacks(config, run_dir, splits) + list(callbacks),
            verbose=verbose)
    written = [path(run_dir, "config"), path(run_dir, "model"),
               path(run_dir, "history"), path(run_dir, "tensorboard")]
    if not chief:
        return written  # the chief draws the pictures
    return written + [draw(run_dir, name, vae, config, splits) for name in PICTURES]


def build_model(config, image_shape):
    """The `VAE` (or `ConditionalVAE`) that `config` describes."""
    kwargs = config_lib.model_kwargs(config)
    if config["conditional"]:
        return ConditionalVAE(input_shape=image_shape, num_classes=config["num_classes"],
                              **kwargs)
    return VAE(input_shape=image_shape, **kwargs)


def _with_num_classes(config, splits):
    if not config["conditional"]:
        return config
    if splits.y_train is None or splits.y_test is None:
        raise ValueError(
            f"conditional training needs labels, and the dataset {config['dataset']!r} "
            "has none (images:<dir> takes them from subfolders, npz:<path> from "
            "y_train and y_test)."
        )
    found = int(max(splits.y_train.max(), splits.y_test.max())) + 1
    if config["num_classes"] and config["num_classes"] < found:
        raise ValueError(
            f"num_classes is {config['num_classes']} but the labels go up to {found - 1}."
        )
    return {**config, "num_classes": config["num_classes"] or found}


def inputs(config, images, labels):
    """Model inputs: the images, or {"images", "labels"} for a conditional model."""
    return {"images": images, "labels": labels} if config["conditional"] else images


def worker_dir(run_dir, strategy):
    """Where a non-chief worker writes: fixed per run and worker, so that a
    resumed multi-worker run finds every worker's backup again."""
    key = hashlib.sha1(os.path.abspath(run_dir).encode()).hexdigest()[:10]
    task = strategy.cluster_resolver.task_id
    return os.path.join(tempfile.gettempdir(), f"keras-vae-{key}-worker{task}")


def _check_resumable(run_dir):
    backup = path(run_dir, "backup")
    if not os.path.isdir(backup) and os.path.exists(path(run_dir, "model")):
        raise FileExistsError(
            f"The run {run_dir} has finished (model.keras exists and backup/ "
            "is gone): there is nothing to resume. Start a new run with "
            "--run-dir, or --overwrite this one."
        )
    weights = os.path.join(backup, "latest.weights.h5")
    copies = [p for p in (weights, weights + ".bkp") if os.path.exists(p)]
    if copies and not any(_readable_h5(p) for p in copies):
        raise ValueError(
            f"The backup {weights} is truncated or corrupt, and so is its "
            "previous copy: this run cannot be resumed. Start it again with "
            "--overwrite."
        )


def _readable_h5(file_path):
    import h5py

    try:
        with h5py.File(file_path, "r") as f:
            f.visit(lambda name: None)
        return True
    except (OSError, ValueError):
        return False


def _optimizer(config):
    try:
        return keras.optimizers.get(
            {"class_name": config["optimizer"],
             "config": {"learning_rate": config["learning_rate"]}}
        )
    except ValueError:
        raise ValueError(
            f"Unknown optimizer: {config['optimizer']!r}. Expected a Keras "
            "optimizer name, e.g. adam, rmsprop, adagrad, sgd or adamw."
        ) from None


def _check_new_run_dir(run_dir, overwrite):
    if not (os.path.exists(run_dir) and os.listdir(run_dir)):
        return
    if not overwrite:
        raise FileExistsError(
            f"The run directory {run_dir} exists. Pass --overwrite to "
            f"replace it, --resume {run_dir} to continue its training, or "
            "choose another --run-dir."
        )
    if not os.path.exists(path(run_dir, "config")):
        raise FileExistsError(
            f"{run_dir} is not a keras-vae run directory (it has no "
            "config.json); refusing to delete it. Choose another --run-dir."
        )


def _callbacks(config, run_dir, splits):
    images = data.to_unit_interval(splits.x_test[:8]).numpy()
    labels = None if splits.y_test is None else splits.y_test[:8]
    sample_labels = np.arange(16) % config["num_classes"] if config["conditional"] else None
    result = [
        callbacks_lib.HistoryCSV(path(run_dir, "history")),
        callbacks_lib.SaveModelEachEpoch(path(run_dir, "model")),
        keras.callbacks.BackupAndRestore(path(run_dir, "backup"),
                                         double_checkpoint=True),
        keras.callbacks.TensorBoard(path(run_dir, "tensorboard")),
        callbacks_lib.ImageSummaries(
            os.path.join(path(run_dir, "tensorboard"), "images"),
            inputs(config, images, labels), seed=config["seed"],
            sample_labels=sample_labels),
    ]
    if config["kl_warmup_epochs"] > 0 and config["kl_cycle_epochs"] > 0:
        raise ValueError("Choose kl_warmup_epochs or kl_cycle_epochs, not both.")
    if config["kl_warmup_epochs"] > 0:
        result.append(callbacks_lib.KLWarmup(config["kl_warmup_epochs"],
                                             target=config["kl_weight"]))
    if config["kl_cycle_epochs"] > 0:
        result.append(callbacks_lib.CyclicalKLAnnealing(config["kl_cycle_epochs"],
                                                        target=config["kl_weight"]))
    return result


# === Data ===
def load_splits(config):
    """The run's data source, with `limit` applied to the training split."""
    splits = data.load(config["dataset"], data_dir=config["data_dir"],
                       image_size=config_lib.image_size(config), seed=config["seed"])
    if config["limit"]:
        splits.x_train = splits.x_train[: config["limit"]]
        if splits.y_train is not None:
            splits.y_train = splits.y_train[: config["limit"]]
    return splits


def _dataset(config, x, training, drop_remainder=False, labels=None):
    return data.make_dataset(x, config["batch_size"], binarize=config["binarize"],
                             labels=labels if config["conditional"] else None,
                             training=training, seed=config["seed"],
                             drop_remainder=drop_remainder)


# === Using a finished run ===
def read_config(run_dir):
    config_path = path(run_dir, "config")
    if not os.path.exists(config_path):
        raise FileNotFoundError(
            f"No run at {run_dir}: {config_path} is missing. Train one with "
            "`keras-vae train --run-dir DIR`."
        )
    with open(config_path) as f:
        return config_lib.resolve(json.load(f))


def load_run(run_dir):
    """Return `(config, vae)` of a finished run."""
    config = read_config(run_dir)
    model_path = path(run_dir, "model")
    if not os.path.exists(model_path):
        raise FileNotFoundError(
            f"{run_dir} has no model.keras: its first epoch has not finished. "
            f"Continue it with `keras-vae train --resume {run_dir}`."
        )
    return config, load_vae_file(model_path)


def evaluate(run_dir, batch_size=500, verbose="auto", iw_samples=0, anomaly=None,
             anomaly_quantile=0.99):
    """Score a run on its test split; the result is also saved as JSON.

    Always: the negative ELBO, reconstruction and KL (nats per example),
    active units and, for factorised Gaussian priors, the KL per latent
    dimension. With `iw_samples` = k > 0: the importance-sampled negative
    log-likelihood (nats and bits per dimension). With `anomaly` (another
    dataset spec): per-example negative-ELBO scores of that dataset's test
    split against a threshold at `anomaly_quantile` of this one's, and the
    AUROC of the two.
    """
    config, vae = load_run(run_dir)
    splits = load_splits(config)
    images = _prepared_test_images(config, splits.x_test)
    x_test = inputs(config, images, splits.y_test)
    logs = vae.evaluate(x_test, batch_size=batch_size, verbose=verbose, return_dict=True)
    active, _ = evaluation.active_units(vae, x_test)
    result = {
        "dataset": config["dataset"],
        "split": "test",
        "examples": int(len(images)),
        "binarize": config["binarize"],
        # −ELBO = reconstruction + KL at weight 1, whatever the training used.
        "negative_elbo": float(logs["reconstruction_loss"] + logs["kl_loss"]),
        "reconstruction_loss": float(logs["reconstruction_loss"]),
        "kl_loss": float(logs["kl_loss"]),
        # What `fit` minimised: −ELBO only with the ELBO objective, kl_weight
        # 1 and no free bits.
        "training_objective": float(logs["loss"]),
        "training_objective_name": objective_name(vae),
        "kl_weight": float(np.asarray(vae.kl_weight.value)),
        "active_units": active,
        "units": "nats per example",
    }
    try:
        result["kl_per_dimension"] = evaluation.kl_per_dimension(vae, x_test).tolist()
    except ValueError:
        pass  # no per-dimension KL for mixture priors
    if iw_samples:
        nll = -evaluation.log_likelihood(vae, x_test, num_samples=iw_samples,
                                         verbose=verbose != 0)
        result["negative_log_likelihood"] = float(nll.mean())
        result["iw_samples"] = iw_samples
        convention, reason = evaluation.bits_convention(
            vae.likelihood, binarized=config["binarize"] != "none")
        if convention:
            result["bits_per_dimension"] = float(evaluation.bits_per_dimension(
                nll.mean(), int(np.prod(images.shape[1:])), convention))
            result["bits_per_dimension_convention"] = (
                evaluation.BITS_CONVENTIONS[convention])
        else:
            result["bits_per_dimension_omitted"] = reason
    if anomaly:
        result["anomaly"] = _anomaly_report(vae, config, x_test, anomaly, anomaly_quantile)
    callbacks_lib.write_atomically(path(run_dir, "evaluation"),
                                   json.dumps(result, indent=2) + "\n")
    return result


def objective_name(vae):
    """What the model's `loss` is, in words."""
    weight = float(np.asarray(vae.kl_weight.value))
    if vae.objective == "iwae":
        name = f"negative IWAE bound (k={vae.num_samples})"
    else:
        name = "negative ELBO"
    details = []
    if weight != 1.0:
        details.append(f"KL weight {weight:g}")
    if vae.free_bits > 0:
        details.append(f"free bits {vae.free_bits:g} nats per dimension")
    return name + (f" with {', '.join(details)}" if details else "")


def _prepared_test_images(config, x):
    dataset = data.make_dataset(x, 1000, binarize=config["binarize"], training=False,
                                seed=config["seed"])
    return np.concatenate(list(dataset.as_numpy_iterator()))


def _anomaly_report(vae, config, x_test, spec, quantile):
    other = data.load(spec, data_dir=None, image_size=tuple(vae.data_shape[:2])
                      if spec.startswith("images:") else None, seed=config["seed"])
    if tuple(other.image_shape) != tuple(vae.data_shape):
        raise ValueError(
            f"The anomaly dataset {spec!r} has images of shape {other.image_shape}; "
            f"the model takes {tuple(vae.data_shape)}."
        )
    if config["conditional"] and other.y_test is None:
        raise ValueError(f"A conditional model scores labelled data; {spec!r} has no labels.")
    x_other = inputs(config, _prepared_test_images(config, other.x_test), other.y_test)
    normal = evaluation.anomaly_scores(vae, x_test)
    scores = evaluation.anomaly_scores(vae, x_other)
    threshold = evaluation.anomaly_threshold(normal, quantile)
    return {
        "dataset": spec,
        "score": "negative ELBO (nats)",
        "threshold": threshold,
        "quantile": quantile,
        "flagged_fraction": float(np.mean(scores > threshold)),
        "normal_flagged_fraction": float(np.mean(normal > threshold)),
        "auroc": evaluation.auroc(normal, scores),
    }


def draw(run_dir, name, vae=None, config=None, splits=None, **options):
    """Write one picture of a run (one of `PICTURES`); return its path."""
    if name not in PICTURES:
        raise ValueError(f"Unknown picture: {name!r}. Expected one of {list(PICTURES)}.")
    if vae is None:
        config, vae = load_run(run_dir)
    if name == "training_curves":
        rows = callbacks_lib.read_history(path(run_dir, "history"))
        history = {key: [row[key] for row in rows if key in row]
                   for key in (rows[0] if rows else {})}
        return plotting.training_curves(history, path(run_dir, name))
    if name == "samples":
        return _draw_samples(vae, config, path(run_dir, name), options.get("num", 16),
                             options.get("seed", config["seed"]))
    splits = splits or load_splits(config)
    x_test = data.to_unit_interval(splits.x_test).numpy()
    y_test = splits.y_test
    if name == "reconstructions":
        count = options.get("num", 10)
        originals = x_test[:count]
        labels = None if y_test is None else y_test[:count]
        return plotting.reconstructions(
            originals, vae.reconstruct(inputs(config, originals, labels)), path(run_dir, name))
    if name == "interpolation":
        a, b = _two_different(y_test)
        steps = options.get("steps", 10)
        extra = {"labels": (y_test[a], y_test[b])} if config["conditional"] else {}
        return plotting.interpolation(vae.interpolate(x_test[a], x_test[b], steps, **extra),
                                      path(run_dir, name))
    labels = None if y_test is None else y_test[:_MAX_MAP_POINTS]
    codes, _ = vae.encode(inputs(config, x_test[:_MAX_MAP_POINTS], labels))
    return plotting.latent_map(codes, labels, path(run_dir, name))


def _draw_samples(vae, config, target, num, seed):
    if not config["conditional"]:
        return plotting.image_grid(vae.sample(num, seed=seed), target,
                                   title="Samples from the prior")
    classes = config["num_classes"]
    per_class = max(4, num // classes)
    labels = np.repeat(np.arange(classes), per_class)
    return plotting.image_grid(
        vae.sample(len(labels), seed=seed, labels=labels), target, columns=per_class,
        row_labels=[str(c) for c in range(classes)],
        title="One class per row")


def _two_different(labels):
    """Indices of the first two test examples with different labels."""
    if labels is not None:
        for index in range(1, len(labels)):
            if labels[index] != labels[0]:
                return 0, index
    return 0, 1


# === Export ===
FORMATS = ("saved_model", "tflite")


def export_model(source, out=None, formats=FORMATS, quantize=tuple(export.VARIANTS),
                 model_name="vae", version=None, overwrite=False):
    """Export a run directory or a `.keras` file; return the paths written.

    SavedModel goes to `<out>/<model_name>/<version>/`, LiteRT files to
    `<out>/<model_name>_<variant>.tflite`; `out` defaults to `<run>/export`.
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"Unknown format(s): {', '.join(unknown)}. Expected some of {list(FORMATS)}.")
    if os.path.isdir(source):
        config, vae = load_run(source)
        dataset, out = config["dataset"], out or os.path.join(source, "export")
    else:
        vae, dataset = load_vae_file(source), None
        out = out or os.path.join(os.path.dirname(os.path.abspath(source)), "export")
    # Check every target first, so a refusal leaves nothing half-exported.
    if "saved_model" in formats:
        export.saved_model.version_path(out, model_name, version, overwrite)
    if "tflite" in formats:
        export.litert.litert_paths(out, model_name, quantize, overwrite)
    written = []
    if "saved_model" in formats:
        written.append(export.export_saved_model(vae, out, model_name, version,
                                                 overwrite, dataset))
    if "tflite" in formats:
        paths = export.export_litert(vae, out, model_name, quantize, overwrite, dataset)
        written += list(paths.values()) + [os.path.join(out, f"{model_name}_metadata.json")]
    return written


def load_vae_file(model_path):
    """Load a `.keras` file and check that it holds a `keras_vae.VAE`."""
    if not os.path.exists(model_path):
        raise FileNotFoundError(f"No model file at {model_path}.")
    try:
        model = keras.models.load_model(model_path)
    except Exception as error:  # Keras raises many types for unreadable files
        raise ValueError(
            f"{model_path} could not be read as a Keras model ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}). Expected a .keras "
            "file saved from a keras_vae.VAE."
        ) from None
    if not isinstance(model, VAE):
        raise ValueError(
            f"{model_path} holds a {type(model).__name__}, not a keras_vae.VAE: "
            "only keras_vae models can be exported."
        )
    return model
