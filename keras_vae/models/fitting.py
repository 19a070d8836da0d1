"""How the models train: Keras's steps, with the data checked first, the
replicas' global-batch state gathered before `call`, and a NaN guard."""

import keras
import tensorflow as tf
from keras import ops

from keras_vae import validation
from keras_vae.data import arrays
from keras_vae.data.untuned import untuned
from keras_vae.distributions import fused
from keras_vae.training import callbacks as callbacks_lib
from keras_vae.training import distribute
from keras_vae.training import replicas as replicas_lib


class CheckedFitting:
    """Mixed into `keras_vae.VAE` before `keras.Model`.

    The model must have `data_shape`, `likelihood`, `split_inputs` and
    `_network_names` (None for a user's network).
    """

    def train_step(self, data):
        # fused.training_step: the likelihood's log-probability and its
        # gradient trace as one XLA kernel (keras_vae.distributions.fused).
        with replicas_lib.global_batch(self, keras.utils.unpack_x_y_sample_weight(data)[0]), \
                fused.training_step():
            return self._multi_worker_logs(super().train_step(data))

    def test_step(self, data):
        with replicas_lib.global_batch(self, keras.utils.unpack_x_y_sample_weight(data)[0]):
            return self._multi_worker_logs(super().test_step(data))

    def predict_step(self, data):
        with replicas_lib.global_batch(self, keras.utils.unpack_x_y_sample_weight(data)[0]):
            return super().predict_step(data)

    def _multi_worker_logs(self, logs):
        # Keras 3 averages the logs of multi-worker runs along axis 0, which
        # scalars lack (tensorflow/tensorflow#72388): give them that axis.
        if not distribute.in_multi_worker_mode(self.distribute_strategy):
            return logs
        return {name: ops.reshape(value, (1,)) for name, value in logs.items()}

    def fit(self, x=None, y=None, validation_data=None, callbacks=None, **kwargs):
        """Keras `fit`, with the data checked first and a NaN guard.

        Unless `callbacks` has one, a `keras_vae.callbacks.StopOnNonFiniteLoss`
        is added: at a NaN or infinite loss, training stops with a message
        and the weights of the last good epoch.

        Datasets reach Keras with tf.data's autotuning off, and arrays as
        such datasets, batched and shuffled every epoch as Keras batches
        them (`keras_vae.data.untuned` says why: otherwise an epoch can end
        with a wait of up to 60 s). With `y`, `sample_weight`,
        `class_weight`, `validation_split`, `steps_per_epoch` or
        `shuffle="batch"`, Keras batches arrays itself.
        """
        self._check_input_labels(x)
        if isinstance(validation_data, tuple) and validation_data:
            self._check_input_labels(validation_data[0])
        x = validation.checked_data(x, self.data_shape, self.likelihood, "x")
        validation_data = validation.checked_data(
            validation_data, self.data_shape, self.likelihood, "validation_data"
        )
        validation_data = _batches(validation_data, kwargs, "validation_batch_size",
                                   kwargs.get("validation_batch_size") or kwargs.get("batch_size"))
        if y is None and arrays.is_in_memory(x) and kwargs.get("shuffle", True) != "batch" \
                and all(kwargs.get(name) is None for name in _KERAS_BATCHES):
            x = arrays.batches(x, kwargs.pop("batch_size", None),
                               shuffle=kwargs.pop("shuffle", True))
        if isinstance(x, tf.data.Dataset):
            x = untuned(x)
            kwargs.setdefault("shuffle", False)  # a dataset shuffles itself
        self._build_optimizer()
        callbacks = list(callbacks or [])
        if not any(isinstance(c, callbacks_lib.StopOnNonFiniteLoss) for c in callbacks):
            callbacks.append(callbacks_lib.StopOnNonFiniteLoss())
        return super().fit(x, y, validation_data=validation_data,
                           callbacks=callbacks, **kwargs)

    def _build_optimizer(self):
        # Without a strategy scope, Keras builds the optimizer inside the
        # first traced step, and tf.function then traces the step twice (once
        # to create the slot variables). The model builds its own networks at
        # construction, so their variables exist: build the optimizer now and
        # the step is traced once. A user's network may create variables only
        # when first called; then Keras builds everything itself, as before.
        optimizer = getattr(self, "optimizer", None)
        if optimizer is None or optimizer.built or None in self._network_names.values():
            return
        with self.distribute_strategy.scope():
            optimizer.build(self.trainable_variables)

    def evaluate(self, x=None, y=None, **kwargs):
        self._check_input_labels(x)
        x = validation.checked_data(x, self.data_shape, self.likelihood, "x")
        if y is None and kwargs.get("sample_weight") is None and kwargs.get("steps") is None:
            x = _batches(x, kwargs, "batch_size", kwargs.get("batch_size"))
        return super().evaluate(x, y, **kwargs)

    def _check_input_labels(self, inputs):
        """Check the labels of in-memory inputs before Keras slices them
        (conditional models; nothing to check for the plain VAE)."""


# Arguments with which Keras batches arrays itself (`fit`).
_KERAS_BATCHES = ("sample_weight", "class_weight", "validation_split", "steps_per_epoch")


def _batches(data, kwargs, size_argument, batch_size):
    """`data` as Keras gets it from `fit` or `evaluate`: a dataset with
    tf.data's autotuning off (`keras_vae.data.untuned`); arrays (alone, or
    alone in a tuple, as `validation_data=(x_val,)`) as such a dataset of
    batches of `batch_size` in order, `size_argument` then taken out of
    `kwargs`. Other data passes unchanged."""
    inner = data[0] if isinstance(data, tuple) and len(data) == 1 else data
    if isinstance(inner, tf.data.Dataset):
        return untuned(inner)
    if not arrays.is_in_memory(inner):
        return data
    kwargs.pop(size_argument, None)
    return arrays.batches(inner, batch_size)
