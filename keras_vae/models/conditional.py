"""A conditional VAE: labels feed the encoder and the decoder."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_vae import validation
from keras_vae.models.vae import VAE


@keras.saving.register_keras_serializable(package="keras_vae")
class ConditionalVAE(VAE):
    """A VAE conditioned on a class label (Sohn et al., 2015).

    The encoder sees the image with the one-hot label as extra channels,
    q(z|x, y); the decoder sees z with the one-hot label appended,
    p(x|z, y). `sample(n, labels=...)` then generates chosen classes.

    Args:
        input_shape: as for `VAE`.
        num_classes: positive int, labels are integers in [0, num_classes).
        **kwargs: every other `VAE` argument (not the VampPrior, whose
            pseudo-inputs have no labels).

    Call arguments:
        inputs: a dict `{"images": x, "labels": y}` (or the pair `(x, y)`);
            train with `fit({"images": x_train, "labels": y_train})`.

    Example:

    ```python
    cvae = keras_vae.ConditionalVAE(input_shape=(28, 28, 1), num_classes=10)
    cvae.compile(optimizer="adam")
    cvae.fit({"images": x_train, "labels": y_train}, epochs=10)
    sevens = cvae.sample(16, labels=7)
    ```
    """

    def __init__(self, input_shape, num_classes=10, **kwargs):
        # Read by the network-building hooks during VAE.__init__.
        self.num_classes = validation.positive_int("num_classes", num_classes)
        super().__init__(input_shape, **kwargs)

    # === Inputs ===
    def split_inputs(self, inputs):
        x, labels = self._images_and_labels(inputs)
        labels = ops.reshape(ops.cast(ops.convert_to_tensor(labels), "int32"), (-1,))
        return self._standardize(x), labels

    def input_arrays(self, inputs):
        x, labels = self._images_and_labels(inputs)
        return np.asarray(x), np.asarray(labels)

    def join_inputs(self, images, labels=None):
        if labels is None:
            raise ValueError("A ConditionalVAE's inputs need labels as well as images.")
        return {"images": images, "labels": labels}

    def _images_and_labels(self, inputs):
        if isinstance(inputs, dict):
            x, labels = inputs.get("images"), inputs.get("labels")
        elif isinstance(inputs, (tuple, list)) and len(inputs) == 2:
            x, labels = inputs
        else:
            raise ValueError(
                "A ConditionalVAE takes {'images': x, 'labels': y} (or the pair "
                f"(x, y)). Received: {type(inputs).__name__}."
            )
        if x is None or labels is None:
            raise ValueError("A ConditionalVAE needs both 'images' and 'labels'.")
        return x, labels

    # === Conditioning hooks ===
    def _model_input_shape(self):
        # Keras records it; SavedModel export traces `call` with this structure.
        return {"images": (None,) + self.data_shape, "labels": (None,)}

    def _encoder_input_shape(self):
        return self.data_shape[:-1] + (self.data_shape[-1] + self.num_classes,)

    def _decoder_input_size(self):
        return self.latent_dim + self.num_classes

    def _encoder_inputs(self, x, labels):
        if labels is None:
            raise ValueError("The ConditionalVAE's encoder needs labels.")
        one_hot = ops.one_hot(labels, self.num_classes)
        spatial = ops.shape(x)[1:-1]
        one_hot = ops.reshape(one_hot, (-1,) + (1,) * len(spatial) + (self.num_classes,))
        one_hot = ops.broadcast_to(one_hot, tuple(ops.shape(x)[:-1]) + (self.num_classes,))
        return ops.concatenate([x, one_hot], axis=-1)

    def _decoder_inputs(self, z, labels):
        if labels is None:
            raise ValueError(
                "A ConditionalVAE decodes for given labels: pass labels= to "
                "decode or sample."
            )
        # Integer labels, or rows of class weights (for interpolation).
        if len(labels.shape) == 2:
            return ops.concatenate([z, ops.cast(labels, "float32")], axis=-1)
        return ops.concatenate([z, ops.one_hot(labels, self.num_classes)], axis=-1)

    def _interpolation_ends(self, x_a, x_b, labels):
        if labels is None or len(labels) != 2:
            raise ValueError("ConditionalVAE.interpolate needs labels=(label_a, label_b).")
        ends = self._check_labels(labels)
        loc, _ = self.encode({"images": ops.stack([x_a, x_b]), "labels": ends})
        return loc, ops.one_hot(ends, self.num_classes)

    def _check_labels(self, labels):
        if labels is None:
            raise ValueError(
                f"A ConditionalVAE needs labels (integers in [0, {self.num_classes})) "
                "to decode or sample."
            )
        if tf.is_tensor(labels) and (not tf.executing_eagerly() or labels.dtype.is_floating):
            return labels  # checked in the graph, or class weights (interpolation)
        labels = np.asarray(labels)
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes
                            or not np.issubdtype(labels.dtype, np.integer)):
            raise ValueError(
                f"Expected integer labels in [0, {self.num_classes}). Received labels "
                f"from {labels.min()} to {labels.max()} (dtype {labels.dtype})."
            )
        return tf.constant(labels.reshape(-1), tf.int32)

    def _check_input_labels(self, inputs):
        if isinstance(inputs, dict) and isinstance(inputs.get("labels"), np.ndarray):
            self._check_labels(inputs["labels"])

    # === Config ===
    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
