"""Limner: self-hosted text-to-image."""

__version__ = "0.1.0"
