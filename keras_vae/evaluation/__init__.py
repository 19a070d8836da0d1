"""Evaluating a trained VAE: the likelihood and its estimators (`estimates`),
how the importance-sampled estimate decodes (`decoding`), latent usage,
anomaly scores, and the quality of samples (`quality`)."""

from keras_vae.evaluation import decoding, quality
from keras_vae.evaluation.estimates import (
    BITS_CONVENTIONS,
    MEAN_SAMPLES,
    active_units,
    active_units_per_layer,
    anomaly_scores,
    anomaly_threshold,
    auroc,
    bits_convention,
    bits_per_dimension,
    kl_per_dimension,
    log_likelihood,
    negative_elbo,
    posterior_means,
    sample_quality,
)
from keras_vae.evaluation.quality import frechet_distance, precision_recall

__all__ = [
    "BITS_CONVENTIONS", "MEAN_SAMPLES", "active_units", "active_units_per_layer", "anomaly_scores",
    "anomaly_threshold", "auroc", "bits_convention", "bits_per_dimension", "decoding",
    "frechet_distance", "kl_per_dimension", "log_likelihood", "negative_elbo",
    "posterior_means", "precision_recall", "quality", "sample_quality",
]
