"""Input moderation (``policy``), the way it reads text past obfuscations (``reading``) and its
example layer in MiniLM's sentence space (``semantic``); the policy itself is moderation.toml."""

from limner.moderation.policy import DEFAULT_POLICY, LEVELS, Category, Match, Policy
from limner.moderation.reading import Reading, Term, fold, plain
from limner.moderation.semantic import Nearest, Semantic, minilm_embed, segments

__all__ = [
    "DEFAULT_POLICY",
    "LEVELS",
    "Category",
    "Match",
    "Nearest",
    "Policy",
    "Reading",
    "Semantic",
    "Term",
    "fold",
    "minilm_embed",
    "plain",
    "segments",
]
