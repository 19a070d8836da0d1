"""Residual convolutional networks (`encoder="resnet"`, `decoder="resnet"`),
for images of any size and any number of channels.

The encoder is a 3×3 stem convolution, then one *stage* per width of
`conv_filters`: `blocks` residual blocks at that width, then a stride-2 3×3
convolution to the next width (the last stage keeps its width), so an image
is downsampled once per stage, as the "conv" encoder is. A Dense head gives
the posterior's parameters. The decoder mirrors it: a Dense layer to the
smallest resolution, then per stage (widest first) a nearest-neighbour ×2
upsampling, a 3×3 convolution to the stage's width and `blocks` residual
blocks; the upsampled image is cropped to the data's size (sides that are
not multiples of 2^stages) and a 3×3 convolution gives the likelihood's
parameters.

A residual block is pre-activation (He et al. 2016, "Identity mappings in
deep residual networks"): x + conv(act(conv(act(x)))). There is no
normalisation layer. Following VDVAE (Child 2021, "Very deep VAEs
generalize autoregressive models", which scales each block's last layer by
1/√N) and Fixup (Zhang, Dauphin & Ma 2019), the last convolution of each
of the N blocks of a network starts with weights scaled by 1/√N, so the
network starts close to its skip path and its outputs keep their variance
whatever its depth. With no batch statistics the networks:
- train the same at every batch size, per replica and globally (no
  cross-replica synchronisation, nothing that depends on the batch);
- compute the same function in training and in inference, so exports
  (SavedModel, LiteRT, the web page) match the Keras model;
- have no variance estimate to overflow under mixed_float16 or to be
  fused differently by XLA.

SiLU activations ("silu", "swish") are `keras_vae.models.activations.silu`:
in a training step, one XLA kernel forward and one backward.
"""

import math

import keras

from keras_vae.models import activations


def residual_block(x, activation, scale, name):
    """x + conv3×3(act(conv3×3(act(x)))), the last convolution's initial
    weights scaled by `scale` (He-normal otherwise)."""
    width = x.shape[-1]
    activation = activations.get(activation)
    h = keras.layers.Activation(activation, name=f"{name}_act1")(x)
    h = keras.layers.Conv2D(width, 3, padding="same", kernel_initializer="he_normal",
                            name=f"{name}_conv1")(h)
    h = keras.layers.Activation(activation, name=f"{name}_act2")(h)
    h = keras.layers.Conv2D(
        width, 3, padding="same", name=f"{name}_conv2",
        kernel_initializer=keras.initializers.VarianceScaling(
            2.0 * scale**2, mode="fan_in", distribution="truncated_normal"))(h)
    return keras.layers.Add(name=f"{name}_add")([x, h])


def resnet_encoder(input_shape, output_size, widths, blocks, activation):
    """Stem, `len(widths)` stages of `blocks` residual blocks each followed by
    a stride-2 convolution, then a Dense layer of `output_size`."""
    _check_image_shape(input_shape)
    scale = 1.0 / math.sqrt(max(1, blocks * len(widths)))
    inputs = keras.Input(input_shape)
    h = keras.layers.Conv2D(widths[0], 3, padding="same", name="stem")(inputs)
    for stage in range(len(widths)):
        for block in range(blocks):
            h = residual_block(h, activation, scale, f"stage{stage}_block{block}")
        following = widths[min(stage + 1, len(widths) - 1)]
        h = keras.layers.Conv2D(following, 3, strides=2, padding="same",
                                name=f"stage{stage}_down")(h)
    h = keras.layers.Activation(activations.get(activation), name="head_act")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    outputs = keras.layers.Dense(output_size, name="head")(h)
    return keras.Model(inputs, outputs, name="resnet_encoder")


def resnet_decoder(latent_dim, output_shape, widths, blocks, activation):
    """Dense to the smallest resolution, then per stage (reversed) ×2
    upsampling, a convolution and `blocks` residual blocks; cropped to
    `output_shape[:2]` and projected to `output_shape[-1]` channels."""
    _check_image_shape(output_shape)
    height, width, channels = output_shape
    stride = 2 ** len(widths)
    start_h, start_w = math.ceil(height / stride), math.ceil(width / stride)
    scale = 1.0 / math.sqrt(max(1, blocks * len(widths)))
    inputs = keras.Input((latent_dim,))
    h = keras.layers.Dense(start_h * start_w * widths[-1], name="stem")(inputs)
    h = keras.layers.Reshape((start_h, start_w, widths[-1]), name="to_image")(h)
    for stage in reversed(range(len(widths))):
        h = keras.layers.UpSampling2D(2, name=f"stage{stage}_up")(h)
        h = keras.layers.Conv2D(widths[stage], 3, padding="same",
                                name=f"stage{stage}_conv")(h)
        for block in range(blocks):
            h = residual_block(h, activation, scale, f"stage{stage}_block{block}")
    # Upsampling overshoots sizes that are not multiples of the stride.
    crop = ((0, start_h * stride - height), (0, start_w * stride - width))
    h = keras.layers.Cropping2D(crop, name="crop")(h)
    h = keras.layers.Activation(activations.get(activation), name="head_act")(h)
    outputs = keras.layers.Conv2D(channels, 3, padding="same", name="head")(h)
    return keras.Model(inputs, outputs, name="resnet_decoder")


def _check_image_shape(shape):
    if len(shape) != 3:
        raise ValueError(
            "The 'resnet' networks need images of shape (height, width, channels). "
            f"Received: shape={tuple(shape)}. Use encoder='mlp' and decoder='mlp' "
            "for other data.")
