"""How a model is saved: its config (networks by name or as layers, the
distributions, fitted samplers, the anomaly detector) and how it is rebuilt from it."""

import keras
import numpy as np

from keras_vae.models import objectives


class Saving:
    """Mixed into `keras_vae.VAE`: `get_config` and `from_config`."""

    def get_config(self):
        config = super().get_config()
        config.update(
            input_shape=list(self.data_shape),
            latent_dim=self.latent_dim,
            encoder=self._network_config("encoder"),
            decoder=self._network_config("decoder"),
            likelihood=keras.saving.serialize_keras_object(self.likelihood),
            prior=keras.saving.serialize_keras_object(self.prior),
            posterior=keras.saving.serialize_keras_object(self.posterior_family),
            kl_weight=float(np.asarray(self._kl_weight.value)),
            num_samples=self.num_samples,
            use_exact_kl=self.use_exact_kl,
            objective=keras.saving.serialize_keras_object(self.objective),
            hidden_units=list(self.hidden_units),
            conv_filters=list(self.conv_filters),
            activation=self.activation,
            seed=self.seed,
        )
        if self.samplers:  # fitted samplers are saved with the model
            config["samplers"] = {name: keras.saving.serialize_keras_object(sampler)
                                  for name, sampler in self.samplers.items()}
        if self.detector is not None:  # and the fitted anomaly detector
            config["detector"] = keras.saving.serialize_keras_object(self.detector)
        return config

    def _network_config(self, role):
        return self._network_names[role] or keras.saving.serialize_keras_object(
            getattr(self, role)
        )

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder", "likelihood", "prior", "posterior", "objective"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        # Files saved before the objectives held their parameters (issue 35).
        old = {key: config.pop(key) for key in objectives.OPTIONS if key in config}
        if old and isinstance(config.get("objective"), str):
            config["objective"] = objectives.configure(config["objective"], **old)
        samplers = config.pop("samplers", {})
        detector = config.pop("detector", None)
        vae = cls(**config)
        for name, sampler in samplers.items():  # built here, their weights loaded after
            vae.add_sampler(name, keras.saving.deserialize_keras_object(sampler))
        if detector is not None:
            vae.add_detector(keras.saving.deserialize_keras_object(detector))
        return vae
