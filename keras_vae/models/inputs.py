"""What an unconditional model takes, and the hooks a conditional one overrides."""

import numpy as np
from keras import ops

from keras_vae import validation


class UnconditionalInputs:
    """Mixed into `keras_vae.VAE`: inputs are examples alone and labels are
    refused. `keras_vae.ConditionalVAE` overrides every method here, so the
    rest of the package asks the model (`num_classes`, `split_inputs`,
    `input_arrays`, `join_inputs`) instead of looking at its inputs.
    """

    def _standardize(self, x):
        x = ops.convert_to_tensor(x)
        validation.check_shape(x.shape, self.data_shape)
        return ops.cast(x, "float32")

    def split_inputs(self, inputs):
        """`(examples, labels)` of model inputs, checked and cast; the plain
        VAE has no labels (None)."""
        return self._standardize(inputs), None

    def input_arrays(self, inputs):
        """`(images, labels)` of in-memory model inputs as NumPy arrays
        (labels None for the plain VAE), without casting or checks."""
        return np.asarray(inputs), None

    def join_inputs(self, images, labels=None):
        """The model's inputs for `images` (and, for a conditional model,
        their `labels`): what `fit`, `evaluate` and `predict` take."""
        self._check_labels(labels)
        return images

    def _check_labels(self, labels):
        if labels is not None:
            raise ValueError(
                "This VAE is unconditional (num_classes is None) and takes no labels. "
                "Use keras_vae.ConditionalVAE to generate chosen classes."
            )
        return None

    def _model_input_shape(self):
        return (None,) + self.data_shape

    def _encoder_input_shape(self):
        return self.data_shape

    def _decoder_input_size(self):
        return self.latent_dim

    def _encoder_inputs(self, x, labels):
        return x

    def _decoder_inputs(self, z, labels):
        return z
