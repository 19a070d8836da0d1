"""From a run's configuration to the objects of the run: the model, its
optimizer, the data and the callbacks."""

import os
import sys

import keras
import numpy as np

from keras_vae import compatibility, data
from keras_vae.models.conditional import ConditionalVAE
from keras_vae.models.hierarchical import HierarchicalVAE
from keras_vae.models.vae import VAE
from keras_vae.runs import config as config_lib
from keras_vae.runs import costs, model_options
from keras_vae.training import callbacks as callbacks_lib


def build_model(config, image_shape, splits=None):
    """The `VAE` (or `ConditionalVAE`, `HierarchicalVAE`) that `config`
    describes; for a table (`splits.columns`), its likelihood standardises the
    columns with the training split's statistics."""
    kwargs = model_options.model_kwargs(config)
    if splits is not None and splits.columns is not None:
        model_options.for_table(config, kwargs, splits)
    defaults = config_lib.defaults()
    if config["latent_dims"]:
        compatibility.check({"hierarchy": config["inference"],
                             "conditional": "yes" if config["conditional"] else "no"})
        if kwargs.pop("latent_dim") != defaults["latent_dim"]:
            raise ValueError(
                f"Give latent_dims ({config['latent_dims']}) or latent_dim "
                f"({config['latent_dim']}), not both: a hierarchy's code is the sum of "
                "latent_dims.")
        for key in ("prior", "posterior"):
            if kwargs.pop(key) != defaults[key]:
                raise ValueError(
                    f"{key} applies to one stochastic layer; a hierarchy's {key} is its "
                    f"own chain of Gaussian layers. Received {key}={config[key]!r} with "
                    f"latent_dims={config['latent_dims']}: leave {key} at its default "
                    f"({defaults[key]!r}), or give latent_dim for one layer.")
        return HierarchicalVAE(image_shape, latent_dims=config["latent_dims"],
                               inference=config["inference"],
                               hierarchy_units=config["hierarchy_units"], **kwargs)
    for key in ("inference", "hierarchy_units"):
        if config[key] != defaults[key]:
            raise ValueError(f"{key} applies to several stochastic layers: give "
                             "latent_dims too (for example latent_dims=100,50).")
    if config["conditional"]:
        return ConditionalVAE(input_shape=image_shape, num_classes=config["num_classes"],
                              **kwargs)
    return VAE(input_shape=image_shape, **kwargs)


def check_sizes(config, splits):
    """Refuse, before anything is allocated, a batch larger than the data and
    a model whose training would not fit in this machine's memory."""
    examples = splits.train.count
    if config["batch_size"] > examples:
        message = (f"batch_size {config['batch_size']} is larger than the {examples} "
                   "training images")
        if config["drop_remainder"]:
            raise ValueError(f"{message}: with drop_remainder no batch would be left. Use "
                             f"a batch_size of at most {examples}.")
        print(f"Note: {message}; each step uses all of them.", file=sys.stderr)
    shape = "x".join(map(str, splits.image_shape))
    nbytes = estimated_bytes(config, splits.image_shape)
    seconds = costs.training_seconds(
        6 * estimated_macs(config, splits.image_shape) * config["num_samples"] * examples
        * config["epochs"])
    print(f"Estimate: {config['epochs']} epochs of {examples} {shape} examples take about "
          f"{costs.duration(seconds)} and {costs.size(nbytes)} of memory here.",
          file=sys.stderr)
    costs.Limits(config["max_minutes"] or float("inf"), config["max_memory"]).check(
        f"Training this model on {shape} examples in batches of {config['batch_size']} "
        f"for {config['epochs']} epochs (weights, gradients, Adam's slots and one batch of "
        "activations)", seconds if config["max_minutes"] else None, nbytes,
        fewer="use fewer epochs or smaller hidden_units, conv_filters, latent_dim, "
        "batch_size, num_samples or image_size")


def estimated_macs(config, image_shape):
    """Multiply-adds of one example's forward pass through the networks: a
    dense weight once, a 3×3 convolution's weights at every position of its
    stage (stride 2 between stages), for the encoder and the decoder."""
    pixels = int(np.prod(image_shape))
    latent = sum(config["latent_dims"] or []) or config["latent_dim"]
    if config["encoder"] == "mlp" and config["decoder"] == "mlp":
        widths = [pixels, *config["hidden_units"], 2 * latent]
        return 2 * sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    channels = [image_shape[-1], *config["conv_filters"]]
    positions = [int(np.prod(image_shape[:-1])) // 4**i for i in range(len(channels) - 1)]
    convs = sum(9 * a * b * p for a, b, p in zip(channels[:-1], channels[1:], positions,
                                                   strict=True))
    return 2 * (1 + 2 * config["resnet_blocks"] * (config["encoder"] == "resnet")) * convs


def estimated_bytes(config, image_shape):
    """A rough upper estimate of training memory for the named networks,
    with the posterior's head (a full covariance has d(d+1)/2 more outputs)
    and a hierarchy's links between its layers."""
    pixels = int(np.prod(image_shape))
    latent = sum(config["latent_dims"] or []) or config["latent_dim"]
    hidden = list(config["hidden_units"])
    head = (latent + latent * (latent + 1) // 2 if config["posterior"] == "full_covariance"
            and not config["latent_dims"] else 2 * latent)
    if config["encoder"] != "mlp" or config["decoder"] != "mlp":
        side = max(1, image_shape[0] // 2 ** len(config["conv_filters"]))
        flat = side * side * config["conv_filters"][-1]
        channels = [image_shape[-1], *config["conv_filters"]]
        widths = [flat, head]
        weights = (flat * (head + latent) + 2 * (1 + 2 * config["resnet_blocks"]) * sum(
            9 * a * b for a, b in zip(channels[:-1], channels[1:], strict=True)))
    else:
        widths = [pixels, *hidden, head]
        weights = 2 * sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    dims = config["latent_dims"] or []
    for below, above in zip(dims[:-1], dims[1:], strict=True):  # inference and generative links
        link = [below, *config["hierarchy_units"], 2 * above]
        weights += 2 * sum(a * b for a, b in zip(link[:-1], link[1:], strict=True))
        widths += config["hierarchy_units"]
    activations = (config["batch_size"] * config["num_samples"]
                   * (3 * pixels + 2 * sum(widths) + 4 * latent))
    return 4 * (4 * weights + 3 * activations)  # float32: weights, gradients, 2 slots


def with_num_classes(config, splits):
    """`config` with `num_classes` found from the labels of a conditional run."""
    if not config["conditional"]:
        return config
    if splits.num_classes is None:
        raise ValueError(
            f"conditional training needs labels, and the dataset {config['dataset']!r} "
            "has none (images:<dir> takes them from subfolders, npz:<path> from "
            "y_train and y_test, tfrecord:<dir> from a 'label' feature)."
        )
    found = splits.num_classes
    if config["num_classes"] and config["num_classes"] < found:
        raise ValueError(
            f"num_classes is {config['num_classes']} but the labels go up to {found - 1}."
        )
    return {**config, "num_classes": config["num_classes"] or found}


def optimizer(config):
    settings = {"learning_rate": config["learning_rate"]}
    if config.get("clipnorm") is not None:
        settings["global_clipnorm"] = config["clipnorm"]
    try:
        return keras.optimizers.get({"class_name": config["optimizer"], "config": settings})
    except ValueError:
        raise ValueError(
            f"Unknown optimizer: {config['optimizer']!r}. Expected a Keras "
            "optimizer name, e.g. adam, rmsprop, adagrad, sgd or adamw."
        ) from None


def load_splits(config):
    """The run's data source (streamed: `keras_vae.data.Splits`), with
    `limit` applied to the training split."""
    splits = data.load(config["dataset"], data_dir=config["data_dir"],
                       image_size=config_lib.image_size(config), seed=config["seed"],
                       label_column=config["label_column"])
    _check_data_options(config, splits.train)
    splits.train = splits.train.take(config["limit"])
    return splits


def _check_data_options(config, split):
    """Refuse the streaming options where they would change nothing: a source
    held in memory as arrays (mnist, npz:) has no files to decode, cache or
    shuffle by buffer, and TFDS caches its own files."""
    in_memory = split.files is None and split.examples_shuffled
    pointless = {"skip_bad_files": in_memory and config["skip_bad_files"],
                 "cache_dir": split.files is None and config["cache_dir"] is not None,
                 "shuffle_buffer": in_memory and config["shuffle_buffer"] is not None}
    for option, refused in pointless.items():
        if refused:
            raise ValueError(
                f"{option} applies to sources read from files (images:<dir>, "
                f"tfrecord:<dir>{'' if option == 'cache_dir' else ', tfds:<name>'}); "
                f"{config['dataset']!r} "
                f"{'is held in memory' if in_memory else 'is read and cached by TFDS itself'}"
                f", so it would change nothing. Leave {option} out, or convert the data "
                "first (keras-vae convert).")


def dataset(config, vae, split, training, drop_remainder=False, batch_size=None, shard=(1, 0)):
    """A `tf.data` pipeline of one split of the run's data (binarized as
    configured, read as a stream), its elements the inputs of `vae` (with
    labels for a conditional model)."""
    return data.stream(split, batch_size or config["batch_size"], binarize=config["binarize"],
                       training=training, seed=config["seed"], drop_remainder=drop_remainder,
                       join=vae.join_inputs, labels=bool(vae.num_classes), shard=shard,
                       cache_dir=config["cache_dir"], shuffle_buffer=config["shuffle_buffer"],
                       skip_bad_files=config["skip_bad_files"],
                       augment=data.augment.parse(config["augment"]))


def prepared_images(config, split):
    """A split's images as the model sees them (scaled, binarized as
    configured), as one array: for data that fits in memory (benchmarks)."""
    stream = data.stream(split, 1000, binarize=config["binarize"], seed=config["seed"],
                         labels=False)
    return np.concatenate(list(stream.as_numpy_iterator()))


def sharded(config, vae, strategy, split, training):
    """Under MultiWorkerMirroredStrategy, a file source split between the
    workers by file (`Split.dataset`'s shard): `(distributed dataset, steps)`.

    Every worker takes the same number of steps, the fewest whole batches
    any worker's share makes (the last examples of the larger shares wait
    for the next epoch's order): a worker that ran out of data first would
    stop the others' all-reduce. A test split too small for one batch per
    worker is read in smaller batches."""
    from keras_vae.training import distribute

    count, _ = distribute.workers(strategy)
    batch = config["batch_size"]
    if batch % count:
        raise ValueError(f"batch_size {batch} must be a multiple of the {count} workers, "
                         "which each take an equal part of every batch.")
    smallest = min(split.shard_count(count, w) for w in range(count))
    if not training and 0 < smallest < batch // count:
        batch = smallest * count  # a small test split: one smaller batch per worker
    steps = smallest // (batch // count)
    if steps < 1:
        raise ValueError(
            f"{split.name} gives a worker fewer than one batch of {batch // count} (the "
            f"batch of {batch} shared by {count} workers). Use a smaller batch_size.")

    def per_worker(context):
        return dataset(config, vae, split, training, drop_remainder=True,
                       batch_size=context.get_per_replica_batch_size(batch),
                       shard=(context.num_input_pipelines, context.input_pipeline_id)).repeat()

    return strategy.distribute_datasets_from_function(per_worker), steps


def callbacks(config, run, splits, vae):
    """The run's callbacks: history, model and backup per epoch, TensorBoard
    scalars and (for images) images, and the KL schedule."""
    images, labels = splits.test.head(8)
    images = data.to_unit_interval(images).numpy()
    sample_labels = np.arange(16) % vae.num_classes if vae.num_classes else None
    result = [
        callbacks_lib.DiskSpaceGuard(run.directory),  # first: before any epoch-end write
        callbacks_lib.HistoryCSV(run.path("history")),
        callbacks_lib.SaveModelEachEpoch(run.path("model")),
        keras.callbacks.BackupAndRestore(run.path("backup"), double_checkpoint=True),
        keras.callbacks.TensorBoard(run.path("tensorboard")),
    ]
    if len(vae.data_shape) == 3:  # a table's rows are not images
        result.append(callbacks_lib.ImageSummaries(
            os.path.join(run.path("tensorboard"), "images"),
            vae.join_inputs(images, labels if vae.num_classes else None),
            seed=config["seed"], sample_labels=sample_labels))
    return result + kl_schedule(config) + time_budget(config)


def time_budget(config):
    """The `TimeBudget` callback of `minutes` and `lr_schedule`, if any."""
    if config["lr_schedule"] not in ("constant", "cosine"):
        raise ValueError(f"Unknown lr_schedule: {config['lr_schedule']!r}. Expected "
                         "'constant' or 'cosine'.")
    if config["minutes"] is None and config["lr_schedule"] == "constant":
        return []
    return [callbacks_lib.TimeBudget(config["minutes"],
                                     cosine=config["lr_schedule"] == "cosine")]


def kl_schedule(config):
    if config["kl_warmup_epochs"] > 0 and config["kl_cycle_epochs"] > 0:
        raise ValueError("Choose kl_warmup_epochs or kl_cycle_epochs, not both.")
    if config["kl_warmup_epochs"] > 0:
        return [callbacks_lib.KLWarmup(config["kl_warmup_epochs"], target=config["kl_weight"])]
    if config["kl_cycle_epochs"] > 0:
        return [callbacks_lib.CyclicalKLAnnealing(config["kl_cycle_epochs"],
                                                  target=config["kl_weight"])]
    return []


def inputs(vae, images, labels):
    """The model's inputs for a split: `vae.join_inputs`, with the labels
    only for a conditional model."""
    return vae.join_inputs(images, labels if vae.num_classes else None)
