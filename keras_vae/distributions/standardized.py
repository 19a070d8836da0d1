"""A likelihood on standardised columns, for data in its own units.

A table's columns have their own units and ranges. `Standardized` wraps a
likelihood on the real line (a Gaussian) with the training data's column
means m and standard deviations s, kept in the model's config: the encoder
sees (x − m) / s, the wrapped likelihood models those values, and the model
takes and returns rows in the data's units, so `decode`, the exports and
the anomaly scores work on raw rows.

Mathematical details: with u = (x − m) / s,

    log p(x|z) = log p_u(u|z) − Σ_j log s_j   (the change of variables)
    E[x|z]     = m + s · E[u|z]
"""

import keras
import numpy as np
import tensorflow as tf

from keras_vae.distributions import likelihoods


def inner(likelihood):
    """The likelihood that a `Standardized` wraps, or `likelihood` itself."""
    return likelihood.likelihood if isinstance(likelihood, Standardized) else likelihood


def columns_of(likelihood):
    """A table model's column names (its `Standardized` likelihood's), or None."""
    return likelihood.columns if isinstance(likelihood, Standardized) else None


@keras.saving.register_keras_serializable(package="keras_vae")
class Standardized(likelihoods.Likelihood):
    """`likelihood` (a name, config or instance on the real line) on the
    columns standardised by `mean` and `scale` (one number per column);
    `columns` names them (a table's header), for messages and exports."""

    #: Bits per dimension need levels or [0, 1] data (`evaluation.bits_convention`).
    kind = "table"

    def __init__(self, likelihood, mean, scale, columns=None):
        # A likelihood on [0, 1] is refused by the model (keras_vae.compatibility).
        self.likelihood = likelihoods.get(likelihood)
        self.column_mean = np.asarray(mean, "float32").reshape(-1)
        self.column_scale = np.asarray(scale, "float32").reshape(-1)
        if (self.column_mean.shape != self.column_scale.shape
                or not np.all(self.column_scale > 0) or not np.all(np.isfinite(
                    self.column_mean)) or not np.all(np.isfinite(self.column_scale))):
            raise ValueError(f"Expected a finite mean and a positive, finite scale per "
                             f"column, of one length. Received {len(self.column_mean)} "
                             f"means and {len(self.column_scale)} scales.")
        self.columns = None if columns is None else [str(c) for c in columns]
        self.params_size = self.likelihood.params_size

    @classmethod
    def fit(cls, likelihood, x, columns=None):
        """Standardise with the columns of `x` (rows × columns): their mean and
        standard deviation (1 for a constant column)."""
        x = np.asarray(x, "float64")
        scale = x.std(axis=0)
        return cls(likelihood, x.mean(axis=0), np.where(scale > 0, scale, 1.0), columns)

    def standardize(self, x):
        return (tf.cast(x, tf.float32) - self.column_mean) / self.column_scale

    def encoder_inputs(self, x):
        return self.standardize(x)

    def output_channels(self, channels):
        return self.likelihood.output_channels(channels)

    def distribution(self, params, event_ndims):
        return self.likelihood.distribution(params, event_ndims)

    def log_prob(self, distribution, x):
        return (self.likelihood.log_prob(distribution, self.standardize(x))
                - float(np.sum(np.log(self.column_scale.astype("float64")))))

    def _to_data(self, values):
        return self.column_mean + self.column_scale * values

    def mean(self, params):
        return self._to_data(self.likelihood.mean(params))

    def distribution_mean(self, distribution):
        return self._to_data(self.likelihood.distribution_mean(distribution))

    def get_config(self):
        return {"likelihood": keras.saving.serialize_keras_object(self.likelihood),
                "mean": self.column_mean.tolist(), "scale": self.column_scale.tolist(),
                "columns": self.columns}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["likelihood"] = keras.saving.deserialize_keras_object(config["likelihood"])
        return cls(**config)
