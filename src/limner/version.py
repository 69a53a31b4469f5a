"""The version of Limner, in a module of its own that imports nothing, so that any layer can say
which Limner made an image without importing the package root (which reaches into the engine)."""

__version__ = "0.1.0"
