"""Choosing the tf.distribute strategy in one place."""

import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")


def get_strategy(name="auto"):
    """Return the strategy for `name`.

    - `"auto"`: `MirroredStrategy` over the local GPUs when there are several,
      the default strategy otherwise.
    - `"default"`: one device.
    - `"mirrored"`: every local GPU (or the CPU).
    - `"multi_worker"`: `MultiWorkerMirroredStrategy`, configured by the
      `TF_CONFIG` environment variable.
    - `"tpu"`: the TPU found by `TPUClusterResolver`.
    """
    if name not in STRATEGIES:
        raise ValueError(
            f"Unknown strategy: {name!r}. Expected one of {list(STRATEGIES)}."
        )
    if name == "auto":
        several_gpus = len(tf.config.list_logical_devices("GPU")) > 1
        name = "mirrored" if several_gpus else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return _tpu_strategy()


def _tpu_strategy():
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise ValueError(
            f"No TPU found for strategy='tpu' ({error}). Run on a TPU host or "
            "VM, or choose strategy 'auto'."
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def is_tpu(strategy):
    return isinstance(strategy, tf.distribute.TPUStrategy)
