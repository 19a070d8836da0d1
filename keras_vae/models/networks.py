"""Encoder and decoder networks, built by name for any image shape.

The encoder maps x to the posterior's parameters (2 · latent_dim values: the
loc, then the pre-softplus scale). The decoder maps z to the likelihood's
parameters, shaped `image_shape[:-1] + (channels * params_size,)`. Networks
are plain `keras.Sequential` models, so they save and load with no custom code.

Each named family is a `Network` in `REGISTRY` ("mlp", "conv", "resnet"); a
user's family joins with `@networks.register("name")`, and `encoder="name"`
then builds it with its defaults, `encoder=ResNet(blocks=3)` with others.
Anything else given as a network must be a Keras layer.
"""

import abc
import math

import keras

from keras_vae.models import resnet
from keras_vae.registry import Configurable, Registry
from keras_vae.validation import positive_int


class Network(Configurable, abc.ABC):
    """A family of encoder and decoder networks, built for any image shape.

    `encoder(input_shape, output_size, hidden_units, conv_filters, activation)`
    maps an image to `output_size` values; `decoder(latent_dim, output_shape,
    ...)` maps a code to `output_shape`. Each family uses the sizes it needs.
    """

    @abc.abstractmethod
    def encoder(self, input_shape, output_size, hidden_units, conv_filters, activation):
        """The encoder, a Keras model (each family's own)."""

    @abc.abstractmethod
    def decoder(self, latent_dim, output_shape, hidden_units, conv_filters, activation):
        """The decoder, a Keras model (each family's own)."""


REGISTRY = Registry("network", Network)
register = REGISTRY.register


def names():
    """The named network families."""
    return REGISTRY.names()


def get(identifier):
    """The `Network` for a name, a config dict or an instance."""
    return REGISTRY.get(identifier)


def mlp_encoder(input_shape, output_size, hidden_units, activation):
    """Flatten, then Dense layers of `hidden_units`, then `output_size` values."""
    layers = [keras.Input(input_shape), keras.layers.Flatten()]
    layers += [keras.layers.Dense(u, activation=activation) for u in hidden_units]
    layers.append(keras.layers.Dense(output_size))
    return keras.Sequential(layers, name="mlp_encoder")


def mlp_decoder(latent_dim, output_shape, hidden_units, activation):
    """Dense layers of `hidden_units` in reverse order, reshaped to `output_shape`."""
    layers = [keras.Input((latent_dim,))]
    layers += [
        keras.layers.Dense(u, activation=activation)
        for u in reversed(hidden_units)
    ]
    layers.append(keras.layers.Dense(math.prod(output_shape)))
    layers.append(keras.layers.Reshape(output_shape))
    return keras.Sequential(layers, name="mlp_decoder")


def conv_encoder(input_shape, output_size, filters, activation):
    """Stride-2 3×3 convolutions with `filters` channels, then a Dense head."""
    _check_image_shape(input_shape)
    layers = [keras.Input(input_shape)]
    layers += [
        keras.layers.Conv2D(f, 3, strides=2, padding="same", activation=activation)
        for f in filters
    ]
    layers += [keras.layers.Flatten(), keras.layers.Dense(output_size)]
    return keras.Sequential(layers, name="conv_encoder")


def conv_decoder(latent_dim, output_shape, filters, activation):
    """Mirror of `conv_encoder`: Dense, transposed convolutions, crop to size."""
    _check_image_shape(output_shape)
    height, width, channels = output_shape
    stride = 2 ** len(filters)
    start_h, start_w = math.ceil(height / stride), math.ceil(width / stride)
    layers = [
        keras.Input((latent_dim,)),
        keras.layers.Dense(start_h * start_w * filters[-1], activation=activation),
        keras.layers.Reshape((start_h, start_w, filters[-1])),
    ]
    layers += [
        keras.layers.Conv2DTranspose(
            f, 3, strides=2, padding="same", activation=activation
        )
        for f in reversed(filters)
    ]
    # Upsampling overshoots sizes that are not multiples of the stride.
    crop = ((0, start_h * stride - height), (0, start_w * stride - width))
    layers += [
        keras.layers.Cropping2D(crop),
        keras.layers.Conv2D(channels, 3, padding="same"),
    ]
    return keras.Sequential(layers, name="conv_decoder")


def _check_image_shape(shape):
    if len(shape) != 3:
        raise ValueError(
            "The 'conv' networks need images of shape (height, width, "
            f"channels). Received: shape={tuple(shape)}. Use encoder='mlp' "
            "and decoder='mlp' for other data."
        )


@register("mlp")
class Mlp(Network):
    """Dense layers of `hidden_units` (`mlp_encoder`, `mlp_decoder`)."""

    def encoder(self, input_shape, output_size, hidden_units, conv_filters, activation):
        return mlp_encoder(input_shape, output_size, hidden_units, activation)

    def decoder(self, latent_dim, output_shape, hidden_units, conv_filters, activation):
        return mlp_decoder(latent_dim, output_shape, hidden_units, activation)


@register("conv")
class Conv(Network):
    """Stride-2 convolutions of `conv_filters` (`conv_encoder`, `conv_decoder`)."""

    def encoder(self, input_shape, output_size, hidden_units, conv_filters, activation):
        return conv_encoder(input_shape, output_size, conv_filters, activation)

    def decoder(self, latent_dim, output_shape, hidden_units, conv_filters, activation):
        return conv_decoder(latent_dim, output_shape, conv_filters, activation)


@keras.saving.register_keras_serializable(package="keras_vae")
@register("resnet")
class ResNet(Network):
    """Residual stages, one per width of `conv_filters`, each of `blocks`
    residual blocks and a stride-2 convolution (`keras_vae.models.resnet`).

    Args:
        blocks: positive int, the residual blocks of each stage.
    """

    def __init__(self, blocks=2):
        self.blocks = positive_int("blocks", blocks)

    def encoder(self, input_shape, output_size, hidden_units, conv_filters, activation):
        return resnet.resnet_encoder(input_shape, output_size, conv_filters, self.blocks,
                                     activation)

    def decoder(self, latent_dim, output_shape, hidden_units, conv_filters, activation):
        return resnet.resnet_decoder(latent_dim, output_shape, conv_filters, self.blocks,
                                     activation)

    def get_config(self):
        return {"blocks": self.blocks}


def level_of(identifier):
    """The registered name of a network given by name or as a `Network`
    (its level in `keras_vae.compatibility`), or None (a user's layer)."""
    if isinstance(identifier, Network):
        return REGISTRY.name_of(identifier)
    return identifier if isinstance(identifier, str) else None


def build_encoder(identifier, input_shape, output_size, units, filters, activation):
    """Return the encoder for a registered name ('mlp', 'conv', 'resnet'), a
    `Network`, or a user's Keras layer (returned as it is)."""
    if isinstance(identifier, keras.layers.Layer):
        return identifier
    return _family("encoder", identifier).encoder(input_shape, output_size, units, filters,
                                                  activation)


def build_decoder(identifier, latent_dim, output_shape, units, filters, activation):
    """Return the decoder for a registered name ('mlp', 'conv', 'resnet'), a
    `Network`, or a user's Keras layer (returned as it is)."""
    if isinstance(identifier, keras.layers.Layer):
        return identifier
    return _family("decoder", identifier).decoder(latent_dim, output_shape, units, filters,
                                                  activation)


def _family(role, identifier):
    if isinstance(identifier, Network):
        return identifier
    if not (isinstance(identifier, str) and identifier in REGISTRY):
        raise ValueError(
            f"Unknown {role}: {identifier!r}. Expected one of {list(names())}, "
            "a keras_vae.networks.Network instance, or a keras.layers.Layer instance."
        )
    return REGISTRY[identifier]()


def serialized(identifier):
    """How a model's config keeps a network given by name or as a `Network`:
    the name, or the Network's config; None for a user's layer (saved as
    a layer)."""
    if isinstance(identifier, Network):
        return keras.saving.serialize_keras_object(identifier)
    return identifier if isinstance(identifier, str) else None
