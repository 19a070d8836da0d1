"""Training to a time budget, and the learning rate along a half cosine."""

import math
import time

import keras


class TimeBudget(keras.callbacks.Callback):
    """Stop training after `minutes`; with `cosine=True`, lower the learning
    rate along a half cosine over the budget, to `floor` × its first value.

    Without `minutes`, the cosine runs over the epochs of `fit` instead, and
    training ends with them. The rate is set at the start of each epoch:

        rate = rate₀ · (floor + (1 − floor) · ½ (1 + cos(π · progress)))

    where progress is the elapsed share of the minutes (or of the epochs).
    `epochs` holds the number of epochs trained. A resumed run (`--resume`)
    gets a fresh budget.
    """

    def __init__(self, minutes=None, cosine=False, floor=0.05):
        super().__init__()
        if minutes is not None and not minutes > 0:
            raise ValueError(f"Expected minutes > 0. Received: minutes={minutes!r}")
        self.seconds = None if minutes is None else 60.0 * minutes
        self.cosine, self.floor = bool(cosine), float(floor)
        self.epochs = 0

    def on_train_begin(self, logs=None):
        self.start = time.time()
        self.initial_rate = float(keras.ops.convert_to_numpy(
            self.model.optimizer.learning_rate))

    def progress(self, epoch):
        """The share of the budget used when `epoch` begins, in [0, 1]."""
        if self.seconds is not None:
            return min(1.0, (time.time() - self.start) / self.seconds)
        return min(1.0, epoch / max(1, self.params.get("epochs") or 1))

    def on_epoch_begin(self, epoch, logs=None):
        if self.cosine:
            factor = self.floor + (1 - self.floor) * 0.5 * (
                1 + math.cos(math.pi * self.progress(epoch)))
            self.model.optimizer.learning_rate = self.initial_rate * factor

    def on_epoch_end(self, epoch, logs=None):
        self.epochs = epoch + 1
        if self.seconds is not None and time.time() - self.start > self.seconds:
            self.model.stop_training = True
