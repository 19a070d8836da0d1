"""The package's version, in the lowest layer so that every module can read it."""

__version__ = "0.1.0"
