"""Hierarchical latent variables: z = [z_1, …, z_L] as one code.

The generative path p(z_L) p(z_{L−1}|z_L) … p(z_1|z_2) and the inference
path are Markov chains of diagonal Gaussians, each link an MLP of the block
before it. Both are written as one bijector from ε ~ N(0, I) to the whole
code (`MarkovChain`),

    z_first = loc + scale ⊙ ε_first,    z_next = loc(z_prev) + scale(z_prev) ⊙ ε_next,

whose Jacobian is block-triangular with diagonal scales, so

    log q(z) = log N(ε; 0, I) − Σ log scale,

and whose inverse is one pass in closed form: ε_next = (z_next − loc(z_prev)) /
scale(z_prev). So the model, its objectives, the importance-sampled
likelihood and the samplers see one distribution over the concatenated code
of size Σ latent_dims and need no change. The decoder reads z_1 only
(`keras_vae.models.hierarchical.HierarchicalVAE`).

- `HierarchicalPrior`: z_L ~ N(0, I), then p(z_i | z_{i+1}) down to z_1.
- `BottomUpInference` (Burda et al., 2015): q(z_1|x) from the encoder, then
  q(z_{i+1} | z_i) up to z_L.
- `LadderInference` (Sønderby et al., 2016): `keras_vae.distributions.ladder`.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_vae import validation
from keras_vae.distributions.posteriors import Posterior
from keras_vae.distributions.priors import Prior, _standard_normal
from keras_vae.distributions.scale import positive_scale

tfb, tfd = tfp.bijectors, tfp.distributions


@keras.saving.register_keras_serializable(package="keras_vae")
class GaussianLink(keras.layers.Layer):
    """An MLP from one block of the code to the (loc, scale) of the next:
    Dense layers of `hidden_units`, then 2 · `output_dim` values, loc then
    scale before `positive_scale`."""

    def __init__(self, output_dim, hidden_units, activation, **kwargs):  # pragma: no mutate block
        super().__init__(**kwargs)
        self.output_dim, self.hidden_units = output_dim, tuple(hidden_units)
        self.activation = activation
        self.dense = [keras.layers.Dense(u, activation=activation) for u in self.hidden_units]
        self.dense.append(keras.layers.Dense(2 * output_dim))

    def build(self, input_dim):
        width = int(input_dim)
        for layer in self.dense:
            layer.build((None, width))
            width = layer.units
        self.built = True

    def raw(self, x):
        """The 2 · output_dim outputs before the scale's softplus."""
        for layer in self.dense:
            x = layer(x)
        return x

    def split(self, raw):
        """`(loc, scale)` from the outputs of `raw`."""
        return raw[..., : self.output_dim], positive_scale(raw[..., self.output_dim:])

    def call(self, x):
        return self.split(self.raw(x))

    def get_config(self):
        return {**super().get_config(), "output_dim": self.output_dim,
                "hidden_units": list(self.hidden_units), "activation": self.activation}


def _split(z, sizes):
    return tf.split(z, list(sizes), axis=-1)


class MarkovChain(tfb.Bijector):
    """ε → z for a chain of Gaussian blocks (module docstring).

    Args:
        sizes: the block sizes in the code's order (z_1 first).
        first: `(loc, scale)` of the first block generated, or None for N(0, I).
        links: one callable per later block, `z_prev → (loc, scale)`.
        top_down: generate z_L first (the prior, the ladder); else z_1 first.
    """

    def __init__(self, sizes, first, links, top_down):  # pragma: no mutate block
        super().__init__(forward_min_event_ndims=1, name="markov_chain")
        self._sizes, self._first, self._links = tuple(sizes), first, tuple(links)
        order = list(range(len(self._sizes)))
        self._order = order[::-1] if top_down else order
        self._drawn = {}

    def transform(self, values, inverse):
        """`(other, scales)`: z from ε (or ε from z when `inverse`), and the
        scale of every dimension, each the shape of `values`: one pass along
        the chain."""
        given = _split(values, self._sizes)
        found, code, scales = [None] * len(given), [None] * len(given), [None] * len(given)
        for step, block in enumerate(self._order):
            if step == 0:
                loc, scale = self._first if self._first is not None else (0.0, 1.0)
            else:
                loc, scale = self._links[step - 1](code[self._order[step - 1]])
            if inverse:
                found[block], code[block] = (given[block] - loc) / scale, given[block]
            else:
                found[block] = code[block] = loc + scale * given[block]
            scales[block] = scale + tf.zeros_like(given[block])
        return tf.concat(found, axis=-1), tf.concat(scales, axis=-1)

    def log_scale(self, values, inverse):
        """`(other, Σ log scale)` of `transform`."""
        other, scales = self.transform(values, inverse)
        return other, tf.reduce_sum(tf.math.log(scales), axis=-1)

    # The log-determinant of each ε this chain pushed forward: log q(z) of
    # its own draws (the ELBO's, the objectives', the evaluator's) then
    # reuses the pass that drew z. TFP finds ε for such z in its own cache
    # and asks `_forward_log_det_jacobian(ε)`; any other z costs two passes.
    def _forward(self, x):
        z, log_det = self.log_scale(x, inverse=False)
        self._drawn[x.ref()] = log_det
        return z

    def _inverse(self, y):
        return self.transform(y, inverse=True)[0]

    def _forward_log_det_jacobian(self, x):
        if x.ref() in self._drawn:
            return self._drawn[x.ref()]
        return self.log_scale(x, inverse=False)[1]


def chain_distribution(bijector, batch_shape):
    """N(0, I) over the whole code pushed through `bijector`."""
    size = sum(bijector._sizes)
    shape = tf.concat([tf.cast(batch_shape, tf.int32), [size]], axis=0)
    zeros = tf.zeros(shape)
    return tfd.TransformedDistribution(tfd.Independent(tfd.Normal(zeros, 1.0), 1), bijector)


def check_latent_dims(latent_dims):
    dims = validation.positive_int_tuple("latent_dims", latent_dims)
    if len(dims) < 2:
        raise ValueError(
            f"A hierarchy needs at least two stochastic layers. Received latent_dims="
            f"{latent_dims!r}. Use for example latent_dims=(100, 50), bottom first, or "
            "keras_vae.VAE with latent_dim for one layer.")
    return dims


class _Links(keras.layers.Layer):
    """A layer holding one `GaussianLink` per step of a chain."""

    def __init__(self, latent_dims, hidden_units=(100, 100), activation="tanh", **kwargs):  # noqa: E501  # pragma: no mutate block
        super().__init__(**kwargs)
        self.latent_dims = check_latent_dims(latent_dims)
        self.hidden_units = validation.positive_int_tuple("hidden_units", hidden_units)
        self.activation = activation
        self.links = []

    def _check_size(self, latent_dim):
        if int(latent_dim) != sum(self.latent_dims):
            raise ValueError(
                f"{type(self).__name__} of latent_dims {self.latent_dims} makes codes of "
                f"size {sum(self.latent_dims)}; the model's latent_dim is {latent_dim}.")
        self.latent_dim = int(latent_dim)

    def _make_links(self, pairs):
        """Build one link per `(input size, output size)`."""
        self.links = [GaussianLink(out, self.hidden_units, self.activation,
                                   name=f"link_{i}") for i, (_, out) in enumerate(pairs)]
        for link, (size, _) in zip(self.links, pairs, strict=True):
            link.build(size)
        self.built = True

    def get_build_config(self):
        return None  # the VAE builds it, also when loading

    def get_config(self):
        return {"latent_dims": list(self.latent_dims), "hidden_units": list(self.hidden_units),
                "activation": self.activation}


@keras.saving.register_keras_serializable(package="keras_vae")
class HierarchicalPrior(_Links, Prior):
    """p(z) = p(z_L) Π_i p(z_i | z_{i+1}), z_L ~ N(0, I), each p(z_i | z_{i+1})
    a diagonal Gaussian from an MLP of z_{i+1} (`hidden_units`, `activation`).
    `link(i, z_next)` gives the (loc, scale) of layer i given layer i + 1,
    counting from 0 (z_1) to L − 2."""

    def build(self, latent_dim):
        self._check_size(latent_dim)
        dims = self.latent_dims
        self._make_links([(dims[i + 1], dims[i]) for i in range(len(dims) - 1)])

    def link(self, i, z_next):
        return self.links[i](z_next)

    def bijector(self):
        # Generated top-down: the link into z_{L−1} first, down to z_1.
        links = [self.links[i] for i in reversed(range(len(self.links)))]
        return MarkovChain(self.latent_dims, None, links, top_down=True)

    def distribution(self):
        return chain_distribution(self.bijector(), [])

    def log_prob(self, z):
        eps, log_det = self.bijector().log_scale(z, inverse=True)
        return tfd.Independent(tfd.Normal(0.0, tf.ones_like(eps)), 1).log_prob(eps) - log_det

    def sample(self, num_samples, seed=None, temperature=1.0):
        """Ancestral sampling, z_L first; `temperature` scales every ε."""
        eps = temperature * _standard_normal(num_samples, self.latent_dim, seed)
        return self.bijector().transform(eps, inverse=False)[0]


@keras.saving.register_keras_serializable(package="keras_vae")
class BottomUpInference(_Links, Posterior):
    """q(z|x) = q(z_1|x) Π_i q(z_{i+1} | z_i) (Burda et al., 2015): the encoder
    gives z_1's loc and scale (2 · latent_dims[0] values), an MLP of z_i gives
    z_{i+1}'s. `loc_and_scale` is the chain at ε = 0 (each block's loc given
    the locs below it) and the scales along it."""

    loc_is_mean = False

    def params_size(self, latent_dim):
        return 2 * self.latent_dims[0]

    def build(self, latent_dim):
        self._check_size(latent_dim)
        dims = self.latent_dims
        self._make_links([(dims[i], dims[i + 1]) for i in range(len(dims) - 1)])

    def first_block(self, params):
        d = self.latent_dims[0]
        return params[..., :d], positive_scale(params[..., d:])

    def distribution(self, params):
        chain = MarkovChain(self.latent_dims, self.first_block(params), self.links,
                            top_down=False)
        return chain_distribution(chain, tf.shape(params)[:-1])

    def reparameterize(self, distribution, eps):
        return distribution.bijector.forward(eps)

    def loc_and_scale(self, distribution):
        base = distribution.distribution.distribution
        return distribution.bijector.transform(tf.zeros_like(base.loc), inverse=False)

    def kl_divergence(self, distribution, prior):
        raise NotImplementedError("A hierarchy's KL is a Monte-Carlo estimate.")

