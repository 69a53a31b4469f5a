"""Input moderation: a configurable policy of categories and terms, matched after normalising
case, accents, spacing and common obfuscations (l33t digits, s.p.a.c.e.d letters, looong
letters). ``moderation="low"`` skips categories the policy marks relaxable. Output checks are
plain callables (image → category or None) for image classifiers to hook in.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from limner.errors import InvalidRequest, ModerationBlocked

LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "@": "a",
        "$": "s",
        "!": "i",
        "|": "l",
    }
)
DEFAULT_POLICY = Path(__file__).with_name("moderation.toml")


def _squeeze(word: str) -> str:
    """Repeated letters as one ("nuuude" → "nude"); a word of one repeated letter keeps three
    ("xxxx" → "xxx"), so that it is not mistaken for the single letter ("x marks the spot")."""
    if len(word) >= 3 and len(set(word)) == 1:
        return word[0] * 3
    return re.sub(r"(.)\1+", r"\1", word)


def normalise(text: str) -> list[str]:
    """Tokens of the text as the policy sees them: lower case, no accents, digits read as
    letters, runs of single letters joined ("k i l l" → "kill"), repeated letters squeezed."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower().translate(LEET)
    raw = re.findall(r"[a-z]+", text)
    tokens: list[str] = []
    run: list[str] = []
    for tok in raw:
        if len(tok) == 1:
            run.append(tok)
            continue
        tokens.extend(_join(run))
        run = []
        tokens.append(tok)
    tokens.extend(_join(run))
    return [_squeeze(t) for t in tokens]


def _join(run: list[str]) -> list[str]:
    """Spaced-out letters as one word — also without a leading article ("a n u d e" → "nude")."""
    if len(run) < 2:
        return run
    joined = "".join(run)
    return [joined, joined[1:]] if run[0] in ("a", "i") else [joined]


@dataclass
class Category:
    name: str
    terms: list[list[str]]  # each term as normalised tokens
    relaxable: bool = False
    message: str = ""


@dataclass
class Policy:
    categories: list[Category] = field(default_factory=list)
    output_checks: list[Callable[[Image.Image], str | None]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path | None = None) -> Policy:
        path = Path(path or DEFAULT_POLICY)
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise InvalidRequest(f"cannot read moderation policy {path}: {e}") from e
        cats = []
        for name, c in data.get("categories", {}).items():
            terms = [normalise(t) for t in c.get("terms", [])]
            cats.append(
                Category(
                    name,
                    [t for t in terms if t],
                    bool(c.get("relaxable", False)),
                    c.get("message", f"the prompt falls under the {name.replace('_', ' ')} policy"),
                )
            )
        return cls(cats)

    def match(self, text: str, level: str = "auto") -> Category | None:
        tokens = normalise(text)
        for cat in self.categories:
            if level == "low" and cat.relaxable:
                continue
            for term in cat.terms:
                n = len(term)
                if any(tokens[i : i + n] == term for i in range(len(tokens) - n + 1)):
                    return cat
        return None

    def check_input(self, *texts: str, level: str = "auto") -> None:
        """Raise ModerationBlocked (stage "input") if any text falls under a category."""
        if level not in ("auto", "low"):
            raise InvalidRequest("moderation must be 'auto' or 'low'", param="moderation")
        for text in texts:
            cat = self.match(text or "", level)
            if cat is not None:
                raise ModerationBlocked(
                    f"Your request was rejected by the safety system: {cat.message}.",
                    stage="input",
                    category=cat.name,
                )

    def check_output(self, image: Image.Image) -> None:
        for check in self.output_checks:
            category = check(image)
            if category:
                raise ModerationBlocked(
                    "The generated image was rejected by the safety system.",
                    stage="output",
                    category=category,
                )
