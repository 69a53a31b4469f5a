"""Generation engine: one call path for every model and every entry point."""

from limner.engine.engine import Engine
from limner.engine.request import GeneratedImage, GenerationRequest, Progress

__all__ = ["Engine", "GeneratedImage", "GenerationRequest", "Progress"]
