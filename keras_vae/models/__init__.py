"""The models: the VAE, its conditional variant, their networks and objectives."""

from keras_vae.models import networks, objectives
from keras_vae.models.conditional import ConditionalVAE
from keras_vae.models.hierarchical import HierarchicalVAE
from keras_vae.models.vae import VAE

__all__ = ["VAE", "ConditionalVAE", "HierarchicalVAE", "networks", "objectives"]
