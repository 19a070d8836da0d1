"""The training job: a run directory from a configuration."""

import contextlib
import random
import shutil
import sys

import keras
import numpy as np

from keras_vae import data, files
from keras_vae.runs import build, pictures
from keras_vae.runs.layout import Run
from keras_vae.training import distribute, signals


def train(config, run_dir, overwrite=False, resume=False, verbose="auto",
          callbacks=(), strategy=None):
    """Train a VAE as `config` says; return the paths written, in order.

    Everything is checked and built before the run directory is touched, so
    a bad option leaves no half-made run behind. `model.keras` is rewritten
    after every epoch; `backup/` holds what `resume` needs until training
    ends. Under MultiWorkerMirroredStrategy only the chief writes `run_dir`;
    the other workers write to their own folder in the system's temporary
    directory (`Run.for_worker`). `strategy` defaults to the config's.

    The global seeds and the mixed-precision policy that the run sets are
    put back as they were when it ends.
    """
    run = Run(run_dir)
    if resume:
        config = run.read_config()
    strategy = strategy or distribute.get_strategy(config["strategy"])
    chief = distribute.is_chief(strategy)
    if not chief:
        run = run.for_worker(strategy)
    if resume and chief:
        run.check_resumable()
    elif not resume and chief:
        run.check_new(overwrite)
    build.kl_schedule(config)  # refuse bad schedules before anything is written
    data.augment.parse(config["augment"])
    build.time_budget(config)
    with global_state_restored():
        return _train(config, run, resume, verbose, callbacks, strategy, chief)


def _train(config, run, resume, verbose, extra_callbacks, strategy, chief):
    keras.utils.set_random_seed(config["seed"])
    keras.mixed_precision.set_global_policy(
        "float32" if config["mixed_precision"] == "none" else config["mixed_precision"])
    splits = build.load_splits(config)
    build.check_sizes(config, splits)
    config = build.with_num_classes(config, splits)
    with strategy.scope():
        vae = build.build_model(config, splits.image_shape, splits)
        vae.compile(optimizer=build.optimizer(config), jit_compile=config["jit_compile"],
                    steps_per_execution=config["steps_per_execution"])
    train_set, test_set, steps = _datasets(config, vae, splits, strategy)
    if not resume:
        shutil.rmtree(run.directory, ignore_errors=True)
        run.create(config)
    if distribute.workers(strategy)[0] > 1 and splits.train.files is not None:
        _list_read(run, splits, strategy)
    # A stop by signal waits until the epoch's files are written.
    guard = signals.EpochEndGuard()
    try:
        with data.reading(splits.train, splits.test):
            vae.fit(train_set, epochs=config["epochs"], validation_data=test_set, **steps,
                    callbacks=[guard.opening, *build.callbacks(config, run, splits, vae),
                               *extra_callbacks, guard.closing],
                    verbose=verbose)
    finally:
        guard.close()
    written = [run.path(name) for name in ("config", "model", "history", "tensorboard")]
    if config["skip_bad_files"] and chief:
        written.append(_list_skipped(run, splits))
    if not chief:
        return written  # the chief draws the pictures
    for name in pictures.PICTURES:
        try:
            written.append(pictures.draw(run.directory, name, vae, config, splits))
        except pictures.Unavailable as note:  # the model is trained and saved: a note
            print(f"Note: no {name}.png: {note}", file=sys.stderr)
    return written


def _datasets(config, vae, splits, strategy):
    """The training and test pipelines, and `fit`'s steps where they are set.
    Under a cluster a file source is split between the workers by file, and
    each worker lists the files it reads in `files_read.txt` (its folder)."""
    workers, worker = distribute.workers(strategy)
    if workers > 1 and splits.train.files is not None:
        train_set, steps = build.sharded(config, vae, strategy, splits.train, training=True)
        test_set, test_steps = build.sharded(config, vae, strategy, splits.test,
                                             training=False)
        return train_set, test_set, {"steps_per_epoch": steps, "validation_steps": test_steps}
    train_set = build.dataset(config, vae, splits.train, training=True,
                              drop_remainder=config["drop_remainder"]
                              or distribute.is_tpu(strategy))
    return train_set, build.dataset(config, vae, splits.test, training=False), {}


def _list_read(run, splits, strategy):
    """Write `files_read.txt`: the files this worker of a cluster reads."""
    workers, worker = distribute.workers(strategy)
    lines = [f"# worker {worker} of {workers}"]
    for split in (splits.train, splits.test):
        lines += [f"{path}\t{split.name}" for path in split.shard_files(workers, worker)]
    files.write_text(run.path("files_read"), "\n".join(lines) + "\n")
    return run.path("files_read")


def _list_skipped(run, splits):
    """Write `skipped_files.txt`: the files that --skip-bad-files skipped."""
    bad = [(split.name, path) for split in (splits.train, splits.test)
           for path in data.find_bad_files(split)]
    lines = [f"# {len(bad)} file(s) could not be decoded and were skipped"]
    lines += [f"{path}\t{name}" for name, path in bad]
    files.write_text(run.path("skipped_files"), "\n".join(lines) + "\n")
    return run.path("skipped_files")


@contextlib.contextmanager
def global_state_restored():
    """Put back the mixed-precision policy and the Python and NumPy random
    states after the block (a run sets them; the caller's process keeps its own)."""
    policy = keras.mixed_precision.global_policy()
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(policy)
        random.setstate(python_state)
        np.random.set_state(numpy_state)
