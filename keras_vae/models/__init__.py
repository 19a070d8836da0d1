"""The models: the VAE, its conditional and hierarchical variants, their
networks and objectives, and the latent samplers fitted after training."""

from keras_vae.models import bounds, networks, objectives, samplers
from keras_vae.models.conditional import ConditionalVAE
from keras_vae.models.hierarchical import HierarchicalVAE
from keras_vae.models.vae import VAE

__all__ = ["VAE", "ConditionalVAE", "HierarchicalVAE", "bounds", "networks", "objectives",
           "samplers"]
