"""Evaluating a trained VAE: likelihood, latent usage and anomaly scores.

Mathematical details:

The importance-sampled log-likelihood (Burda et al., 2015) with k samples
z_i ~ q(z|x):

    log p(x) ≈ log (1/k) Σ_i p(x|z_i) p(z_i) / q(z_i|x),

computed with log-sum-exp, in chunks of samples and batches of examples so
that memory stays bounded whatever k. It is a lower bound on log p(x) that
tightens as k grows (k = 1 is the ELBO).

Bits per dimension depend on what the likelihood measures (`bits_convention`):
for a probability of discrete data (Bernoulli on binarized data, the
discretized logistic) they are −log₂ P(x) / D = NLL / (D ln 2). For a density
on data in [0, 1] scaled from 8-bit levels (Gaussian, continuous Bernoulli)
they are (NLL + D ln 256) / (D ln 2): the density taken as the probability of
a 1/256-wide bin, the convention of Theis et al. (2016) and Dinh et al.
(2017). Elsewhere (a Bernoulli cross-entropy on grey levels, a density on
binary data) there is no meaningful number and none is reported.

A latent dimension is active when the variance over the data of its
posterior mean E_q[z|x] exceeds 0.01 (Burda et al.). Where `encode`'s loc
is not that mean (a flow, a hierarchy: `Posterior.loc_is_mean`), the mean
of each example is estimated from S draws of z; their noise adds
(1 − 1/N) · E_x[Var_q(z)] / S to the variance over N examples in
expectation, and that amount, estimated from the same draws, is taken off.
"""

import functools
import math

import keras
import numpy as np
import tensorflow as tf

from keras_vae.evaluation import decoding
from keras_vae.models import objectives
from keras_vae.models.batches import batches as _batches
from keras_vae.models.batches import length as _length
from keras_vae.models.batches import posterior_means  # noqa: F401  (evaluation's, as before)


def log_likelihood(vae, x, num_samples=5000, batch_size=100,  # pragma: no mutate
                   chunk_size=250, seed=0, verbose=True,  # pragma: no mutate
                   precision="float32"):
    """Importance-sampled log p(x) in nats, per example (a NumPy array).

    Args:
        vae: a `keras_vae.VAE`.
        x: examples `(n,) + input_shape`, prepared as for training.
        num_samples: k, the importance samples per example.
        batch_size: examples at a time.
        chunk_size: samples at a time (memory is batch_size · chunk_size
            decoded examples).
        seed: fixes the samples.
        verbose: show a progress bar.
        precision: `"float32"`, or `"bfloat16"` for the decoder's matrix
            products in bfloat16: about twice as fast on CPUs with AMX or
            AVX512-BF16 units, for an estimate that moves by a small fraction
            of its Monte-Carlo error (`keras_vae.evaluation.decoding`; an MLP decoder).

    The traced computation is kept for the latest two (model, precision)
    pairs, so that evaluating a model again traces and compiles nothing; it
    reads the weights as they are at each call.
    """
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"Expected a positive integer num_samples. Received: {num_samples!r}")
    decoding.check_precision(precision)  # before the cache, which hashes it
    chunk_log_weights = _chunk_log_weights(vae, precision)
    # (The progress bar and the defaults above change no number: not mutated.)
    progress = keras.utils.Progbar(  # pragma: no mutate
        _batch_count(vae, x, batch_size), verbose=int(verbose),  # pragma: no mutate
        unit_name="batch")  # pragma: no mutate
    results = []
    for index, batch in enumerate(_batches(vae, x, batch_size)):
        total = np.full(_length(vae, batch), -np.inf)
        for start in range(0, num_samples, chunk_size):
            count = min(chunk_size, num_samples - start)
            chunk_seed = tf.constant([seed, index * 1_000_003 + start], tf.int32)
            total = np.logaddexp(total, chunk_log_weights(batch, count, chunk_seed).numpy())
        results.append(total - math.log(num_samples))
        progress.update(index + 1)  # pragma: no mutate
    return np.concatenate(results)


def _batch_count(vae, x, batch_size):  # pragma: no mutate (the progress bar's)
    """The number of batches of `x`, or None for a dataset of unknown length."""
    if isinstance(x, tf.data.Dataset):
        known = int(x.cardinality())
        return known if known >= 0 else None
    return math.ceil(_length(vae, x) / batch_size)


@functools.lru_cache(maxsize=2)
def _chunk_log_weights(vae, precision):
    """log Σ_i p(x, z_i) / q(z_i|x) over a chunk of samples z_i ~ q(z|x), as
    a tf.function for `vae` at `precision`. The latest two are kept, so that
    evaluating a model again (a batch at a time, or after a few more epochs:
    the function reads the weights as they are) traces and compiles once."""
    log_px_given_z = decoding.decoding(vae, precision)

    @tf.function(reduce_retracing=True)
    def chunk_log_weights(batch, count, chunk_seed):
        x, condition = vae.split_inputs(batch)
        posterior = vae.posterior(x, condition)
        z = posterior.sample(count, seed=chunk_seed)
        log_px = log_px_given_z(z, x, condition)
        log_weights = objectives.log_importance_weights(
            log_px, vae.prior.log_prob(z), posterior.log_prob(z))
        return tf.reduce_logsumexp(log_weights, axis=0)

    return chunk_log_weights


#: The conventions of `bits_per_dimension`, as reports name them.
BITS_CONVENTIONS = {
    "discrete": "NLL / (D ln 2): the probability of discrete data",
    "8bit_density": ("(NLL + D ln 256) / (D ln 2): a density on [0, 1] data as the "
                     "probability of its 1/256-wide 8-bit bin"),
}


def bits_per_dimension(negative_log_likelihood, dimensions, convention="discrete"):
    """Nats per example to bits per data dimension (see `BITS_CONVENTIONS`).

    Args:
        negative_log_likelihood: −log p(x) in nats, per example.
        dimensions: D, the number of values in one example.
        convention: `"discrete"` when p is a probability of discrete data;
            `"8bit_density"` when p is a density on data in [0, 1] scaled from
            8-bit levels.
    """
    if convention not in BITS_CONVENTIONS:
        raise ValueError(
            f"Unknown bits-per-dimension convention: {convention!r}. Expected one "
            f"of {list(BITS_CONVENTIONS)}."
        )
    nll = np.asarray(negative_log_likelihood, dtype="float64")
    if convention == "8bit_density":
        nll = nll + dimensions * math.log(256.0)
    return nll / (dimensions * math.log(2.0))


def bits_convention(likelihood, binarized):
    """`(convention, None)` for `bits_per_dimension`, or `(None, reason)` when
    the likelihood's log p(x|z) gives no meaningful bits per dimension.

    Args:
        likelihood: a `keras_vae.likelihoods` instance.
        binarized: whether the data are binary (binarized images).
    """
    kind = getattr(likelihood, "kind", "density")  # a duck-typed likelihood: a density
    name = type(likelihood).__name__
    if kind == "levels":
        return "discrete", None
    if kind == "table":
        return None, ("a table's columns are values in their own units, not 8-bit levels; "
                      "the log-likelihood is reported in nats per row")
    if kind == "binary":
        if binarized:
            return "discrete", None
        return None, (f"the {name} log-probability of grey levels is a cross-entropy, "
                      "not a log-likelihood; binarize the data for bits per dimension")
    if binarized:
        return None, (f"the {name} likelihood is a density, and a density on binary "
                      "data has no bits-per-dimension meaning")
    return "8bit_density", None


def negative_elbo(vae, x, batch_size=500):  # pragma: no mutate (batching)
    """Per-example negative ELBO (reconstruction + KL, kl_weight 1), nats."""
    scores = []
    for batch in _batches(vae, x, batch_size):
        terms = vae.elbo_terms(batch)
        scores.append(np.asarray(terms.reconstruction + terms.kl))
    return np.concatenate(scores)


#: S, the draws of z per example where `encode`'s loc is not E_q[z|x].
MEAN_SAMPLES = 500


def active_units(vae, x, threshold=0.01):
    """`(count, variances)`: dimensions whose posterior mean E_q[z|x] varies
    over the data by more than `threshold`. The mean is `encode`'s loc, or
    a Monte-Carlo estimate where the loc is not the mean (module docstring)."""
    if vae.posterior_family.loc_is_mean:
        variances = posterior_means(vae, x).var(axis=0)
    else:
        variances = _sampled_mean_variances(vae, x)
    return int(np.sum(variances > threshold)), variances


def _sampled_mean_variances(vae, x, batch_size=100):  # pragma: no mutate (batching)
    """Var_x E_q[z|x] from `MEAN_SAMPLES` draws per example, less their noise."""
    means, noise = [], []
    for index, batch in enumerate(_batches(vae, x, batch_size)):
        posterior = vae.posterior(*vae.split_inputs(batch))
        seed = tf.constant([0, index], tf.int32)
        z = np.asarray(posterior.sample(MEAN_SAMPLES, seed=seed), "float64")
        means.append(z.mean(axis=0))
        noise.append(z.var(axis=0, ddof=1) / MEAN_SAMPLES)
    means, noise = np.concatenate(means), np.concatenate(noise)
    return means.var(axis=0) - (1 - 1 / len(means)) * noise.mean(axis=0)


def active_units_per_layer(vae, x, threshold=0.01):
    """`[(count, variances)]`, one per stochastic layer (z_1 first) of a
    `HierarchicalVAE` (`layer_slices`), one entry for a one-layer model."""
    _, variances = active_units(vae, x, threshold)
    return [(int(np.sum(variances[s] > threshold)), variances[s]) for s in vae.layer_slices()]


def kl_per_dimension(vae, x, batch_size=1000):  # pragma: no mutate (batching)
    """Mean KL(q(z_j|x) ‖ p(z_j)) over the data, for each latent dimension
    (`VAE.kl_per_dimension` averaged over `x`).

    Needs a prior and posterior that factorise over dimensions with a
    closed-form KL (the standard normal or the learnable Gaussian prior with
    the diagonal posterior); otherwise a ValueError says so.
    """
    sums, count = 0.0, 0
    for batch in _batches(vae, x, batch_size):
        sums = sums + np.sum(vae.kl_per_dimension(*vae.split_inputs(batch)), axis=0)
        count += _length(vae, batch)
    return sums / count


# === Sample quality (keras_vae.evaluation.quality) ===
def sample_quality(vae, real_images, num_samples=None, sampler=None, seed=0, features=None):
    """`{"frechet_distance", "precision", "recall"}` of `num_samples` (default:
    as many as `real_images`) samples of `vae` from `sampler` (the prior by
    default), in the features of the committed MNIST classifier."""
    from keras_vae.evaluation import quality

    features = features or quality.Features()
    n = num_samples or len(real_images)
    labels = (np.arange(n) % vae.num_classes) if vae.num_classes else None
    generated = np.asarray(vae.sample(n, seed=seed, labels=labels, sampler=sampler))
    return quality.report(features, real_images, generated)


# === Anomaly detection ===
def anomaly_scores(vae, x, method="elbo", num_samples=100):
    """Per-example anomaly scores (higher = less like the training data).

    `method="elbo"`: the negative ELBO; `"log_likelihood"`: the negative
    importance-sampled log-likelihood with `num_samples` samples.
    """
    if method == "elbo":
        return negative_elbo(vae, x)
    if method == "log_likelihood":
        return -log_likelihood(vae, x, num_samples=num_samples, verbose=False)
    raise ValueError(
        f"Unknown anomaly score: {method!r}. Expected 'elbo' or 'log_likelihood'."
    )


def anomaly_threshold(normal_scores, quantile=0.99):
    """The score above which an example is flagged: a quantile of scores of
    held-out normal data (so about 1 − quantile of normal data is flagged)."""
    if not 0 < quantile < 1:
        raise ValueError(f"Expected a quantile in (0, 1). Received: {quantile!r}")
    return float(np.quantile(np.asarray(normal_scores), quantile))


def auroc(normal_scores, anomaly_scores_):
    """Area under the ROC curve: P(an anomaly scores above a normal example),
    ties counting one half (the Mann–Whitney statistic)."""
    normal = np.sort(np.asarray(normal_scores))
    anomalous = np.asarray(anomaly_scores_)
    for name, scores in (("normal", normal), ("anomaly", anomalous)):
        bad = int(np.sum(~np.isfinite(scores)))
        if bad:
            raise ValueError(
                f"{bad} of the {len(scores)} {name} scores are NaN or infinite, and "
                "the AUROC cannot rank them. Check the model (a NaN loss?) and the "
                "data (values outside the likelihood's range?) that gave them."
            )
    if not len(normal) or not len(anomalous):
        raise ValueError(
            f"The AUROC needs scores of both kinds. Received {len(normal)} normal "
            f"and {len(anomalous)} anomaly scores."
        )
    below = np.searchsorted(normal, anomalous, side="left")
    equal = np.searchsorted(normal, anomalous, side="right") - below
    return float(np.mean((below + 0.5 * equal) / len(normal)))
