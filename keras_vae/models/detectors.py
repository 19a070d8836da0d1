"""Anomaly detectors that travel with the model: a score and its threshold.

`vae.fit_detector(x_normal, score="elbo", false_positive_rate=0.01)` scores
held-out normal data (`keras_vae.models.scores`) and keeps the threshold
above which an example is flagged: the (1 − rate) quantile of those scores,
so that about `false_positive_rate` of fresh normal data is flagged. The
detector is saved in the model's `.keras` file and exported: the
SavedModel's `score` signature and the LiteRT files' `score_<B>` return the
score, the threshold and the flag per example.

The threshold's sampling error: with n normal examples, the share of fresh
normal data above the empirical (1 − α) quantile has standard deviation
about √(α(1 − α)/n); n ≥ 1/α is required (below it no example of the
fitting data would lie above the threshold).
"""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_vae import registry, validation
from keras_vae.models import scores as scores_lib
from keras_vae.models.batches import batches

#: The importance samples of a detector's scores unless told otherwise.
SAMPLES = 16


@keras.saving.register_keras_serializable(package="keras_vae")
class Detector(registry.Configurable):
    """A score (name, config or `Score`), its fixed noise (`num_samples`,
    `seed`) and, once fitted, its `threshold`."""

    def __init__(self, score="elbo", num_samples=SAMPLES, seed=0, threshold=None,
                 false_positive_rate=None, normal_examples=None):
        self.score = scores_lib.get(score)
        self.num_samples = (validation.positive_int("num_samples", num_samples)
                            if self.score.samples_used else 1)
        self.seed = validation.positive_int("seed", seed, minimum=0)
        self.threshold = None if threshold is None else float(threshold)
        self.false_positive_rate = false_positive_rate
        self.normal_examples = normal_examples

    def noise(self, vae):
        return scores_lib.noise(vae.latent_dim, self.num_samples, self.seed)

    def graph_scores(self, vae, inputs):
        """Scores of a batch as a tensor (what the exports trace)."""
        return self.score.score(vae, inputs, tf.constant(self.noise(vae)))

    def scores(self, vae, x, batch_size=256):
        """Per-example scores (a float64 NumPy array) of `x` as `fit` takes it."""
        function = self.traced(vae)
        parts = [np.asarray(function(batch), "float64") for batch in batches(vae, x, batch_size)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def traced(self, vae):
        """The scores as a tf.function for `vae`, traced once and kept for it
        (it reads the weights as they are at each call)."""
        cached = getattr(self, "_function", None)
        if cached is None or cached[0] is not vae:
            cached = (vae, tf.function(lambda batch: self.graph_scores(vae, batch),
                                       reduce_retracing=True))
            self._function = cached
        return cached[1]

    def fit(self, vae, x_normal, false_positive_rate=0.01, batch_size=256):
        """Set the threshold from held-out normal data; return the scores."""
        rate = false_positive_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < 1:
            raise ValueError(f"Invalid false_positive_rate: {rate!r}. Expected a share "
                             "in (0, 1), e.g. 0.01.")
        values = self.scores(vae, x_normal, batch_size)
        check_scores(values, "normal")
        if len(values) < math.ceil(1 / rate):
            raise ValueError(
                f"A threshold at a false-positive rate of {rate:g} needs at least "
                f"{math.ceil(1 / rate)} normal examples; received {len(values)}. Give more "
                "normal data (--normal DATASET), or a larger --false-positive-rate.")
        # The smallest threshold that flags at most `rate` of the fitting data.
        self.threshold = float(np.quantile(values, 1 - rate, method="higher"))
        self.false_positive_rate, self.normal_examples = float(rate), len(values)
        return values

    def flags(self, values):
        if self.threshold is None:
            raise ValueError("This detector has no threshold yet: fit it on normal data "
                             "first (Detector.fit, or keras-vae fit-detector RUN).")
        return np.asarray(values) > self.threshold

    def get_config(self):
        return {"score": keras.saving.serialize_keras_object(self.score),
                "num_samples": self.num_samples, "seed": self.seed,
                "threshold": self.threshold, "false_positive_rate": self.false_positive_rate,
                "normal_examples": self.normal_examples}


def check_scores(values, what, consequence="so no threshold can be set from them"):
    bad = int(np.sum(~np.isfinite(values)))
    if bad:
        raise ValueError(
            f"{bad} of the {len(values)} {what} scores are NaN or infinite, {consequence}. "
            "Check the model (a NaN loss?) and the data (values outside the likelihood's "
            "range, such as grey levels outside [0, 1]).")


class Detection:
    """Mixed into `keras_vae.VAE`: `fit_detector`, `add_detector`, `detector`."""

    @property
    def detector(self):
        """The model's fitted `Detector`, or None."""
        return getattr(self, "_detector", None)

    def add_detector(self, detector):
        """Keep a fitted `Detector`: saved in `.keras`, exported as `score`."""
        if not isinstance(detector, Detector) or detector.threshold is None:
            raise ValueError(f"Expected a fitted keras_vae.detectors.Detector (one with a "
                             f"threshold: Detector.fit). Received: {detector!r}")
        if getattr(detector.score, "sampler", None):
            self.sampler(detector.score.sampler)  # refuses an unknown sampler now
        object.__setattr__(self, "_detector", detector)

    def fit_detector(self, x_normal, score="elbo", false_positive_rate=0.01,
                     num_samples=SAMPLES, seed=0, batch_size=256):
        """Fit a `Detector` on held-out normal data and keep it; return it."""
        detector = Detector(score, num_samples, seed)
        detector.fit(self, x_normal, false_positive_rate, batch_size)
        self.add_detector(detector)
        return detector

    def detector_or_refuse(self):
        if self.detector is None:
            raise ValueError(
                "This model has no anomaly detector. Fit one on held-out normal data: "
                "keras-vae fit-detector RUN (or vae.fit_detector(x_normal)).")
        return self.detector
