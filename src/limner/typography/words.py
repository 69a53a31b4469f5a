"""Words: the random vocabulary of the corpus's typography scenes (``words.txt``) and English's
article rule, shared by captions and scene descriptions."""

from __future__ import annotations

from pathlib import Path

WORDS: list[str] = [
    w
    for w in (Path(__file__).with_name("words.txt").read_text(encoding="utf-8").splitlines())
    if w and not w.startswith("#")
]


def article(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase
