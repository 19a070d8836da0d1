"""Training helpers: callbacks, distribution strategies and replica state."""

from keras_vae.training import callbacks, distribute, replicas, schedules
from keras_vae.training.schedules import TimeBudget

__all__ = ["TimeBudget", "callbacks", "distribute", "replicas", "schedules"]
