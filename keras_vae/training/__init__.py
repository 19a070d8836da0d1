"""Training helpers: callbacks, distribution strategies and replica state."""

from keras_vae.training import callbacks, distribute, replicas

__all__ = ["callbacks", "distribute", "replicas"]
