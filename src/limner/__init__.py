"""Limner: self-hosted text-to-image."""

from __future__ import annotations

from typing import Any

from limner.version import __version__

__all__ = ["Engine", "GeneratedImage", "GenerationRequest", "__version__"]


def __getattr__(name: str) -> Any:  # lazy: `import limner` stays light (no torch) for the CLI
    if name in ("Engine", "GenerationRequest", "GeneratedImage"):
        from limner import engine

        return getattr(engine, name)
    raise AttributeError(name)
