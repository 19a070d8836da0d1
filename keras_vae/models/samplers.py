"""Samplers of z: where `VAE.sample` draws its codes from.

The prior is the model's default sampler. A sampler fitted after training
draws from a density estimated on the codes of the training data (ex-post
density estimation, Ghosh et al. 2020, "From variational to deterministic
autoencoders"): it puts samples where the decoder has seen codes, which
avoids the "prior hole" of a prior that the aggregate posterior does not
fill.

A fitted sampler is a small object whose parameters are part of its config:
the model's `.keras` file keeps them as numbers in its JSON (no pickle), and
an export builds them into the graph as constants; its draws use builtin
LiteRT ops (a categorical draw of the component and normal noise), so it
samples on devices too.

Mathematical details:

    GaussianMixtureSampler: z ~ Σ_k π_k N(μ_k, L_k L_kᵀ), fitted by EM
    (scikit-learn's `GaussianMixture`, full covariances) to the posterior
    means μ(x) of the training set; z = μ_k + L_k ε with k ~ Cat(π), ε ~ N(0, I).
"""

import abc

import keras
import numpy as np
import tensorflow as tf

from keras_vae import registry, validation
from keras_vae.distributions import device_densities, priors
from keras_vae.models.batches import posterior_means

#: The numbers of components tried when `num_components="auto"`.
AUTO_COMPONENTS = (1, 2, 5, 10, 20, 40)


class Sampler(abc.ABC):
    """Base class: `sample(n, seed=None, temperature=1.0)` returns codes
    `(n, latent_dim)`, the noise scaled by `temperature`; `get_config()`
    holds everything needed to rebuild it. A subclass without `sample`
    cannot be made (TypeError at construction)."""

    latent_dim = None

    @abc.abstractmethod
    def sample(self, num_samples, seed=None, temperature=1.0):
        """Codes `(num_samples, latent_dim)`."""

    @classmethod
    def from_config(cls, config):
        return cls(**config)


#: The named samplers: `names()`, `register(name)` (a class decorator) and `get`.
REGISTRY = registry.Registry("sampler", Sampler)
register = REGISTRY.register
names = REGISTRY.names


def get(identifier):
    """A sampler from a config dict or an instance (fitted samplers have no
    default state, so names only select their class)."""
    return REGISTRY.get(identifier)


@keras.saving.register_keras_serializable(package="keras_vae")
@register("gmm")
class GaussianMixtureSampler(Sampler):
    """A mixture of full-covariance Gaussians fitted to the codes of the data.

    Args:
        num_components: K, a positive int.

    Example:

    ```python
    sampler = keras_vae.samplers.GaussianMixtureSampler(10)
    sampler.fit(vae, x_train)
    vae.add_sampler("gmm", sampler)          # saved with the model
    images = vae.sample(16, sampler="gmm")
    ```
    """

    def __init__(self, num_components=10, means=None, scale_trils=None, logits=None):
        self.num_components = validation.positive_int("num_components", num_components)
        self.fitted = means is not None
        if self.fitted:
            self.assign(means, scale_trils, logits)

    def fit(self, vae, x, batch_size=1000, seed=0, max_iter=200):
        """Fit the mixture to the posterior means of `x` (the model's inputs;
        `keras_vae.evaluation.posterior_means`: z at ε = 0 for a flow or a hierarchy)."""
        return self.fit_codes(posterior_means(vae, x, batch_size=batch_size), seed, max_iter)

    def fit_codes(self, codes, seed=0, max_iter=200):
        """Fit the mixture to codes `(n, latent_dim)` (posterior means)."""
        from sklearn.mixture import GaussianMixture

        codes = np.asarray(codes, "float64")
        if len(codes) < self.num_components:
            raise ValueError(
                f"A mixture of {self.num_components} components needs at least as many "
                f"codes; received {len(codes)} examples.")
        mixture = GaussianMixture(self.num_components, covariance_type="full",
                                  random_state=seed, max_iter=max_iter, reg_covar=1e-5)
        mixture.fit(codes)
        self.assign(mixture.means_, np.linalg.cholesky(mixture.covariances_),
                    np.log(mixture.weights_))
        return self

    def assign(self, means, scale_trils, logits):
        """Set the mixture's parameters: `(K, d)` means, `(K, d, d)` lower-
        triangular scales and `(K,)` log-weights."""
        means = np.asarray(means, "float32")
        k, d = means.shape
        self.means = means
        self.scale_trils = np.asarray(scale_trils, "float32").reshape(k, d, d)
        self.logits = np.asarray(logits, "float32").reshape(k)
        self.num_components, self.latent_dim, self.fitted = k, d, True

    def sample(self, num_samples, seed=None, temperature=1.0):
        if not self.fitted:
            raise ValueError("This GaussianMixtureSampler is not fitted: call fit(vae, x).")
        # The component and the noise drawn as the mixture priors draw them
        # (builtin LiteRT ops unseeded, stateless ops seeded).
        k, eps = priors.component_draws(num_samples, tf.constant(self.logits),
                                        self.latent_dim, seed, temperature)
        scale = tf.gather(self.scale_trils, k)
        return tf.gather(self.means, k) + tf.squeeze(tf.matmul(scale, eps[:, :, None]), -1)

    def log_prob(self, z):
        """log Σ_k π_k N(z; μ_k, L_k L_kᵀ), for codes `(n, latent_dim)`
        (in a LiteRT file's graph, `device_densities`' builtin-op form)."""
        if device_densities.active():
            return device_densities.full_covariance_mixture(
                tf.cast(z, "float32"), tf.constant(self.means, "float32"),
                tf.constant(self.scale_trils, "float32"), tf.constant(self.logits, "float32"))
        import tensorflow_probability as tfp

        tfd = tfp.distributions
        mixture = tfd.MixtureSameFamily(
            tfd.Categorical(logits=self.logits),
            tfd.MultivariateNormalTriL(self.means, self.scale_trils))
        return mixture.log_prob(z)

    def get_config(self):
        config = {"num_components": self.num_components}
        if self.fitted:
            config.update(means=self.means.tolist(), scale_trils=self.scale_trils.tolist(),
                          logits=self.logits.tolist())
        return config


def fit_gaussian_mixture(vae, x_train, x_held_out=None, num_components="auto", seed=0):
    """A `GaussianMixtureSampler` fitted to the codes of `x_train` (the
    model's inputs in memory, or a batched dataset of them).

    With `num_components="auto"`, each K of `AUTO_COMPONENTS` (up to the
    number of codes) is fitted and the one with the best mean log-density of
    the held-out codes (`x_held_out`, else the last 10% of `x_train`) kept.
    Returns `(sampler, scores)`, `scores` mapping each K tried to that mean.
    """
    codes = posterior_means(vae, x_train)
    if num_components != "auto":
        return GaussianMixtureSampler(num_components).fit_codes(codes, seed=seed), {}
    if x_held_out is None:
        cut = int(0.9 * len(codes))
        codes, held_out = codes[:cut], codes[cut:]
    else:
        held_out = posterior_means(vae, x_held_out)
    scores, best = {}, None
    for k in AUTO_COMPONENTS:
        if k > len(codes):
            break
        sampler = GaussianMixtureSampler(k).fit_codes(codes, seed=seed)
        scores[k] = float(np.mean(sampler.log_prob(held_out)))
        if best is None or scores[k] > scores[best[0]]:
            best = (k, sampler)
    return best[1], scores
