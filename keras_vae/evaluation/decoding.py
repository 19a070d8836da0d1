"""How the importance-sampled evaluator computes log p(x|z): in float32
through the model's own path, or with the decoder's matrix products in
bfloat16.

`evaluation.log_likelihood` decodes thousands of codes per image, and on a
CPU most of its time is the decoder's matrix products. `Bfloat16Decoding`
multiplies in bfloat16 (oneDNN runs these on AMX tiles or AVX512-BF16
units, where a CPU has them) and keeps the rest in float32: each Dense
layer's bias and activation, and the likelihood's log-probability, which
XLA compiles into one pass over the pixels with the last product's bias.
The products' widths are padded with zeros to whole AMX tiles (`TILE`).
The products keep 8 significant bits of every input and output, so the
estimate moves by a small fraction of its Monte-Carlo error
(docs/benchmarks/evaluator.md measures both); on hardware without bfloat16
units the products are emulated and slower, and round more coarsely (on
an AMD EPYC without them, three times oneDNN's rounding error), so there
`"float32"` is the choice.
"""


import keras
import tensorflow as tf
from keras import ops

from keras_vae import compatibility


class Float32Decoding:
    """log p(x|z) through the model's own decoder and likelihood, float32."""

    def __init__(self, vae):
        self.vae = vae

    def __call__(self, z, x, labels=None):
        """log p(x|z), shape `z.shape[:-1]`, for codes z `(count, batch, latent_dim)`."""
        vae = self.vae
        return vae.likelihood.log_prob(vae.likelihood_distribution(z, labels), x)


class Bfloat16Decoding:
    """log p(x|z) with the decoder's Dense products in bfloat16 (module
    docstring). The decoder must be a `keras.Sequential` of Dense layers,
    optionally ending in a Reshape (the `"mlp"` decoder); any other decoder
    is refused here with a ValueError, before anything runs."""

    def __init__(self, vae):
        self.vae = vae
        self.dense = _dense_layers(vae.decoder)
        self._hidden = [_compiled_hidden(layer.activation) for layer in self.dense[:-1]]
        self._last = tf.function(self._log_prob_of_products, jit_compile=True,
                                 reduce_retracing=True)

    def __call__(self, z, x, labels=None):
        """log p(x|z), shape `z.shape[:-1]`, for codes z `(count, batch, latent_dim)`."""
        vae = self.vae
        flat_z = ops.reshape(z, (-1, vae.latent_dim))
        if labels is not None:  # one label per example, for each sample
            labels = tf.tile(labels, [ops.shape(flat_z)[0] // ops.shape(labels)[0]])
        h = tf.cast(vae._decoder_inputs(flat_z, labels), tf.bfloat16)
        h = tf.pad(h, [[0, 0], [0, _tiles(h.shape[-1]) - h.shape[-1]]])
        for layer, hidden in zip(self.dense[:-1], self._hidden, strict=True):
            h = hidden(tf.matmul(h, _kernel(layer)), _bias(layer, _tiles(layer.units)))
        last = self.dense[-1]
        return self._last(tf.matmul(h, _kernel(last)), _bias(last, last.units), x,
                          tf.shape(z)[:-1])

    def _log_prob_of_products(self, products, bias, x, sample_shape):
        """The last layer's bias and activation and log p(x|z), compiled by
        XLA into one pass, the parameters laid out as the data is (a
        likelihood may read a pixel's neighbours)."""
        vae = self.vae
        products = products[:, :self.dense[-1].units]  # without the padded columns
        params = self.dense[-1].activation(tf.cast(products, tf.float32) + bias)
        params = tf.reshape(params, tf.concat([sample_shape, vae.params_shape], 0))
        x = tf.reshape(x, [-1, *vae.data_shape])
        return vae.likelihood.log_prob(
            vae.likelihood.distribution(params, len(vae.data_shape)), x)


#: `evaluation.log_likelihood(precision=...)`: how log p(x|z) is computed.
DECODINGS = {"float32": Float32Decoding, "bfloat16": Bfloat16Decoding}


def decoding(vae, precision):
    """The decoding of `DECODINGS` named `precision`, for `vae`."""
    check_precision(precision)
    return DECODINGS[precision](vae)


def check_precision(precision):
    """Refuse a `precision` that `DECODINGS` does not name."""
    if not isinstance(precision, str) or precision not in DECODINGS:
        raise ValueError(
            f"Unknown precision: {precision!r}. Expected one of {list(DECODINGS)}: "
            "'float32' (exact) or 'bfloat16' (the decoder's matrix products in "
            "bfloat16, faster on CPUs with AMX or AVX512-BF16 units)."
        )


def _dense_layers(decoder):
    layers = decoder.layers if isinstance(decoder, keras.Sequential) else [decoder]
    body = layers[:-1] if layers and isinstance(layers[-1], keras.layers.Reshape) else layers
    # A Dense layer quantized by Keras (int8, float8) keeps an integer kernel
    # and its scales, which this path would multiply as if they were weights.
    others = [layer for layer in body if not isinstance(layer, keras.layers.Dense)
              or layer.quantization_mode is not None]
    if others or not body:
        if not isinstance(decoder, keras.Sequential):
            found = f"is a {type(decoder).__name__}"
        elif others:
            found = f"has the layer {_described(others[0])}"
        else:
            found = "has no Dense layer"
        network = "resnet" if decoder.name == "resnet_decoder" else "conv"
        rule = compatibility.rule_for(("precision", "bfloat16"), ("network", network))
        raise ValueError(
            "precision='bfloat16' cannot be combined with network='conv' or 'resnet', or with any "
            "decoder other than a keras.Sequential of Dense layers optionally ending in "
            f"a Reshape (network='mlp'): {rule.reason}. This decoder {found}. "
            f"Use {rule.instead}."
        )
    return body


def _described(layer):
    quantized = (f", quantized to {layer.quantization_mode}"
                 if getattr(layer, "quantization_mode", None) else "")
    return f"{type(layer).__name__} ({layer.name!r}{quantized})"


def _compiled_hidden(activation):
    """bias + activation in float32, back to bfloat16 for the next product:
    one pass, compiled by XLA."""
    def hidden(products, bias):
        return tf.cast(activation(tf.cast(products, tf.float32) + bias), tf.bfloat16)
    return tf.function(hidden, jit_compile=True, reduce_retracing=True)


#: Widths are padded with zeros to a multiple of this: an AMX tile row holds
#: 32 bfloat16 values, and oneDNN multiplies whole tiles faster (on these
#: cores a product 500 wide took 1.1–1.25 times as long as one 512 wide).
#: Zero rows of a kernel meet the padded inputs, so the padding adds nothing
#: to any sum; the padded outputs of a hidden layer meet the zero rows of the
#: next kernel, whatever the activation makes of them, and the last layer's
#: are sliced off before its bias.
TILE = 32


def _tiles(size):
    return -(-size // TILE) * TILE


def _kernel(layer):
    """The kernel (a variable, or a tensor where Keras computes it, as with
    LoRA) in bfloat16, padded with zeros to whole tiles."""
    kernel = tf.convert_to_tensor(layer.kernel)
    rows, columns = kernel.shape
    padding = [[0, _tiles(rows) - rows], [0, _tiles(columns) - columns]]
    return tf.cast(tf.pad(kernel, padding), tf.bfloat16)


def _bias(layer, width):
    """The bias in float32, padded with zeros to `width`."""
    bias = (tf.zeros((layer.units,), tf.float32) if layer.bias is None
            else tf.cast(tf.convert_to_tensor(layer.bias), tf.float32))
    return tf.pad(bias, [[0, width - layer.units]])
