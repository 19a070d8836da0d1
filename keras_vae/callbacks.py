"""Callbacks that steer the VAE's objective during `fit`."""

import keras

from keras_vae import validation


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
