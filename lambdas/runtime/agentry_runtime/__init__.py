"""Agentry's agent runtime: the durable reasoning loop that runs inside Lambda."""

__version__ = "0.2.0"

__all__ = ["__version__"]
