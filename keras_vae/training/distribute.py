"""Choosing the tf.distribute strategy, and who writes files, in one place."""

import glob
import os

import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")


def get_strategy(name="auto"):
    """Return the strategy for `name`.

    - `"auto"`: `MirroredStrategy` over the local GPUs when there are several,
      the default strategy otherwise.
    - `"default"`: one device.
    - `"mirrored"`: every local GPU (or the CPU).
    - `"multi_worker"`: `MultiWorkerMirroredStrategy`, configured by the
      `TF_CONFIG` environment variable (one process per machine).
    - `"tpu"`: the TPU named by `$TPU_NAME`, or this TPU VM's own.
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
    # Look for a TPU without touching the network: TPUClusterResolver() with
    # no name asks the cloud metadata server, which may not exist here.
    name = os.environ.get("TPU_NAME")
    if not name and (glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*")):
        name = "local"
    if not name:
        raise ValueError(
            "No TPU found for strategy='tpu': $TPU_NAME is not set and this is "
            "not a TPU VM (no /dev/accel* devices). Set TPU_NAME to your TPU's "
            "name or address, run on a TPU VM, or choose strategy 'auto'."
        )
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=name)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise ValueError(f"Could not start the TPU {name!r}: {error}") from None
    return tf.distribute.TPUStrategy(resolver)


def is_tpu(strategy):
    return isinstance(strategy, tf.distribute.TPUStrategy)


def in_multi_worker_mode(strategy):
    """Whether `strategy` spans several processes (MultiWorkerMirroredStrategy
    with a cluster in TF_CONFIG)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and resolver is not None and bool(resolver.cluster_spec().as_dict()))


def workers(strategy):
    """`(number of workers, this worker's index)`: `(1, 0)` in one process."""
    if not in_multi_worker_mode(strategy):
        return 1, 0
    resolver = strategy.cluster_resolver
    spec = resolver.cluster_spec().as_dict()
    tasks = [(kind, i) for kind in ("chief", "worker") for i in range(len(spec.get(kind, [])))]
    return len(tasks), tasks.index((resolver.task_type, resolver.task_id))


def is_chief(strategy):
    """Whether this process writes the run's files (worker 0, or a chief task).

    Under MultiWorkerMirroredStrategy every worker saves, as TensorFlow's
    multi-worker guide asks, but only the chief into the real run directory.
    """
    if not in_multi_worker_mode(strategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "chief" or (not has_chief and task_type == "worker" and task_id == 0)
