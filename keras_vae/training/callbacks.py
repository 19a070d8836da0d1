"""Callbacks that steer the VAE's objective during `fit`."""

import csv
import math
import os

import keras
import numpy as np
import tensorflow as tf

from keras_vae import files, validation
from keras_vae.training.schedules import TimeBudget  # noqa: F401  (public here too)


class KLWarmup(keras.callbacks.Callback):
    """Raise the KL weight linearly from `start` to `target` over `epochs`.

    The weight lives in a variable (`vae.kl_weight`), so changing it does not
    retrace the compiled training step. Warm-up lets the decoder learn before
    the KL pulls every posterior onto the prior (Bowman et al. 2016).

    Args:
        epochs: positive int, epochs until the weight reaches `target`.
        target: the final weight λ (β).
        start: the weight during the first epoch.

    Example:

    ```python
    vae.fit(x, epochs=20, callbacks=[keras_vae.callbacks.KLWarmup(epochs=10)])
    ```
    """

    def __init__(self, epochs, target=1.0, start=0.0):
        super().__init__()
        self.epochs = validation.positive_int("epochs", epochs)
        self.target = validation.non_negative("target", target)
        self.start = validation.non_negative("start", start)

    def weight_at(self, epoch):
        """The KL weight used during `epoch` (counted from 0)."""
        fraction = min(1.0, epoch / self.epochs)
        return self.start + (self.target - self.start) * fraction

    def on_epoch_begin(self, epoch, logs=None):
        self.model.kl_weight = self.weight_at(epoch)


class CyclicalKLAnnealing(keras.callbacks.Callback):
    """Cyclical annealing of the KL weight (Fu et al., 2019).

    Each cycle of `cycle_epochs` epochs raises the weight linearly from 0 to
    `target` over its first `ratio` part, then holds it; the next cycle
    starts again from 0. This lets the decoder use z before the KL bites.

    Args:
        cycle_epochs: positive int, the length of one cycle.
        target: the weight λ (β) reached in each cycle.
        ratio: the share of a cycle spent rising, in (0, 1].
    """

    def __init__(self, cycle_epochs, target=1.0, ratio=0.5):
        super().__init__()
        self.cycle_epochs = validation.positive_int("cycle_epochs", cycle_epochs)
        self.target = validation.non_negative("target", target)
        if not 0 < ratio <= 1:
            raise ValueError(f"Expected a ratio in (0, 1]. Received: ratio={ratio!r}")
        self.ratio = float(ratio)

    def weight_at(self, epoch):
        """The KL weight used during `epoch` (counted from 0)."""
        position = (epoch % self.cycle_epochs) / self.cycle_epochs
        return self.target * min(1.0, position / self.ratio)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.kl_weight = self.weight_at(epoch)


class HistoryCSV(keras.callbacks.Callback):
    """Write the epoch logs to a CSV file, whole and atomically, every epoch.

    On a resumed run (fit starting at epoch k) the rows of epochs ≥ k, which
    the interrupted run may have written before its last backup, are dropped,
    so the file always holds one row per finished epoch.
    """

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.rows = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.rows is None:
            self.rows = [row for row in read_history(self.path) if row["epoch"] < epoch]

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append({"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}})
        columns = list(dict.fromkeys(k for row in self.rows for k in row))
        lines = [",".join(columns)] + [
            ",".join(_csv_value(row.get(c)) for c in columns) for row in self.rows
        ]
        files.write_text(self.path, "\n".join(lines) + "\n")


def _csv_value(value):
    return "" if value is None else repr(value)


def read_history(path):
    """Rows of a history CSV as dicts (epoch as int, the rest as floats)."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [
            {k: int(v) if k == "epoch" else float(v) for k, v in row.items() if v != ""}
            for row in csv.DictReader(f)
        ]


class ImageSummaries(keras.callbacks.Callback):
    """Log samples from the prior and reconstructions to TensorBoard each epoch.

    Args:
        log_dir: the TensorBoard folder for the images.
        examples: a few images `(n, height, width, channels)` in [0, 1] to
            reconstruct.
        num_samples: samples from the prior, with a fixed seed so that the
            epochs are comparable.
        seed: the sampling seed.
        sample_labels: for a `ConditionalVAE`, the `num_samples` labels to
            sample (its `examples` are then the model's inputs with labels).
    """

    def __init__(self, log_dir, examples, num_samples=16, seed=0, sample_labels=None):
        super().__init__()
        self.log_dir = log_dir
        self.examples = examples
        self.num_samples = num_samples
        self.seed = seed
        self.sample_labels = sample_labels
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        reconstructed = self.model.reconstruct(self.examples)
        images, _ = self.model.input_arrays(self.examples)
        pairs = tf.concat([tf.cast(images, tf.float32), reconstructed], axis=2)
        samples = self.model.sample(self.num_samples, seed=self.seed, labels=self.sample_labels)
        with self._writer.as_default():
            tf.summary.image("samples", samples, step=epoch, max_outputs=self.num_samples)
            tf.summary.image("reconstructions (original | reconstruction)", pairs,
                             step=epoch, max_outputs=len(images))
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


class NonFiniteLossError(RuntimeError):
    """Training stopped because the loss became NaN or infinite."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stop at the first NaN or infinite loss, with the weights restored.

    After every epoch the callback keeps a copy of the weights; at a
    non-finite loss it puts that copy back (so the model in memory is never
    left with NaN weights) and raises `NonFiniteLossError` naming the epoch,
    the step and the likely causes. `VAE.fit` adds it unless present.
    """

    def on_train_begin(self, logs=None):
        self._good_weights = self.model.get_weights()
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self._good_weights = self.model.get_weights()

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if math.isfinite(loss):
            return
        self.model.set_weights(self._good_weights)
        raise NonFiniteLossError(
            f"Training stopped at epoch {self._epoch + 1}, step {batch + 1}: the "
            f"loss became {loss}. The model's weights are back to where they "
            f"were when epoch {self._epoch + 1} began. Likely causes: a learning "
            "rate too high (try one 10 times lower), data outside the "
            "likelihood's range, or a Gaussian likelihood scale too small."
        )


class SaveModelEachEpoch(keras.callbacks.Callback):
    """Save the whole model (`.keras`) after every epoch, atomically.

    The file always holds the last finished epoch: a crash or a stop on a
    non-finite loss leaves it intact and loadable.
    """

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        files.save_model(self.model, self.path)



class DiskSpaceGuard(keras.callbacks.Callback):
    """Before the end-of-epoch writes (model.keras, backup/), check that the
    disk under `folder` has room for them, and raise OSError(ENOSPC) if not.

    HDF5 (the backup's weights) can crash the process when the disk fills
    in the middle of a write; this check turns the usual case into the
    message of a full disk (exit 4: resume once space is freed). The need
    is three copies of the model's and optimizer's variables (the new
    model.keras beside the old one, the new backup beside its previous copy,
    and their containers) and 2 MiB.
    """

    def __init__(self, folder):
        super().__init__()
        self.folder = folder

    def needed_bytes(self):
        state = [*self.model.variables, *getattr(self.model.optimizer, "variables", [])]
        size = sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in state)
        return 3 * size + 2 * 2**20

    def on_epoch_end(self, epoch, logs=None):
        import errno
        import shutil

        need, free = self.needed_bytes(), shutil.disk_usage(self.folder).free
        if free < need:
            raise OSError(errno.ENOSPC, f"No space left on device: the epoch's files need "
                          f"about {need / 2**20:.1f} MiB and {free / 2**20:.1f} MiB are free",
                          os.path.join(self.folder, "model.keras and backup/"))
