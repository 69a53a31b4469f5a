"""Input moderation: a policy of categories, each matched three ways, cheapest first —
  1. terms: words and phrases, in any inflection ("nudes", "beheading"), after normalising the text;
  2. combinations: every list a category names has a term somewhere in the text, in any order
     (a minor-term and a sexual-term: "nude child", "a kid, 12 years old, naked");
  3. examples: nearest-example cosine similarity in MiniLM's sentence space, against curated
     example prompts per category and allowed ones (so paraphrases are caught, and a prompt closer
     to an allowed example is not), with thresholds chosen on bench/moderation.
Phrases in the policy's ``allow`` list ("naked mole rat", "power cable") are taken out of the
text before 1 and 2. ``moderation="low"`` skips categories marked relaxable. Output checks are
plain callables (image → category or None) for image classifiers to hook in.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from limner.errors import InvalidRequest, ModerationBlocked
from limner.moderation.reading import Reading, Term
from limner.moderation.semantic import Nearest, Semantic

DEFAULT_POLICY = Path(__file__).with_name("moderation.toml")
LEVELS = ("auto", "low")


# Every letter a l33t character can stand for; the first is the usual reading.
@dataclass
class Category:
    name: str
    terms: list[Term] = field(repr=False)
    relaxable: bool = False
    message: str = ""
    combine: list[list[Term]] = field(default_factory=list, repr=False)  # a term of each list → this category
    examples: list[str] = field(default_factory=list, repr=False)
    threshold: float = 1.0  # cosine similarity to the nearest example that blocks


@dataclass
class Match:
    """Why a text was blocked: the category, the layer ("term", "combination" or "example") and
    what matched (the term, the terms combined, or the nearest example and its similarity)."""

    category: Category
    layer: str
    evidence: str


@dataclass
class Policy:
    categories: list[Category] = field(default_factory=list)
    output_checks: list[Callable[[Image.Image], str | None]] = field(default_factory=list)
    allow: list[Term] = field(default_factory=list, repr=False)
    semantic: Semantic | None = None

    @classmethod
    def load(cls, path: Path | None = None, *, semantic: bool = True) -> Policy:
        """Read a policy TOML (the built-in one by default). ``semantic=False`` leaves out the
        example layer (no MiniLM is loaded); terms and combinations still apply."""
        path = Path(path or DEFAULT_POLICY)
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise InvalidRequest(f"cannot read moderation policy {path}: {e}") from e
        _check_keys(path, "the policy", data, {"allow", "lists", "categories", "examples"})
        lists = {name: [Term.parse(t) for t in terms] for name, terms in data.get("lists", {}).items()}
        cats = []
        for name, c in data.get("categories", {}).items():
            _check_keys(
                path, f"category {name}", c, {"relaxable", "message", "terms", "combine", "examples", "threshold"}
            )
            unknown = [n for n in c.get("combine", []) if n not in lists]
            if unknown:
                raise InvalidRequest(
                    f"moderation policy {path}: category {name} combines {unknown}, which [lists] does not define"
                )
            cats.append(
                Category(
                    name,
                    [Term.parse(t) for t in c.get("terms", [])],
                    bool(c.get("relaxable", False)),
                    c.get("message", f"the prompt falls under the {name.replace('_', ' ')} policy"),
                    [lists[n] for n in c.get("combine", [])],
                    list(c.get("examples", [])),
                    float(c.get("threshold", 1.0)),
                )
            )
        policy = cls(cats, allow=[Term.parse(t) for t in data.get("allow", [])])
        examples = {c.name: c.examples for c in cats if c.examples}
        if semantic and examples:
            ex = data.get("examples", {})
            policy.semantic = Semantic.build(examples, list(ex.get("allowed", [])), float(ex.get("margin", 0.0)))
        return policy

    def explain(self, text: str, level: str = "auto") -> Match | None:
        """The first category the text falls under, and why; None when it is allowed."""
        return self.explain_all([text], level)[0]

    def explain_all(self, texts: Sequence[str], level: str = "auto") -> list[Match | None]:
        """``explain`` for several texts, with one MiniLM batch for all of them."""
        cats = [c for c in self.categories if not (level == "low" and c.relaxable)]
        out = [self._by_terms(t, cats) for t in texts]
        if self.semantic is not None:
            pending = [i for i, m in enumerate(out) if m is None and texts[i].strip()]
            nearest = self.semantic.nearest([texts[i] for i in pending]) if pending else []
            for i, segs in zip(pending, nearest, strict=True):
                out[i] = self._by_examples(segs, cats)
        return out

    def match(self, text: str, level: str = "auto") -> Category | None:
        m = self.explain(text, level)
        return m.category if m else None

    def check_input(self, *texts: str, level: str = "auto") -> None:
        """Raise ModerationBlocked (stage "input") if any text falls under a category."""
        if level not in LEVELS:
            raise InvalidRequest("moderation must be 'auto' or 'low'", param="moderation")
        for m in self.explain_all([t or "" for t in texts], level):
            if m is not None:
                raise ModerationBlocked(
                    f"Your request was rejected by the safety system: {m.category.message}.",
                    stage="input",
                    category=m.category.name,
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

    def _by_terms(self, text: str, cats: list[Category]) -> Match | None:
        reading = Reading.of(text)
        covered = {i for term in self.allow for s, e in reading.find(term) for i in range(s, e)}
        if covered:
            reading = reading.without(covered)
        for cat in cats:
            for term in cat.terms:
                if reading.find(term):
                    return Match(cat, "term", term.text)
            if cat.combine:
                hits = [next((t for t in terms if reading.find(t)), None) for terms in cat.combine]
                if all(h is not None for h in hits):
                    return Match(cat, "combination", " + ".join(h.text for h in hits if h))
        return None

    def _by_examples(self, segs: list[Nearest], cats: list[Category]) -> Match | None:
        assert self.semantic is not None
        active = {c.name: c for c in cats}
        for n in segs:
            cat = active.get(n.category)
            if cat is not None and n.similarity >= cat.threshold and n.margin >= self.semantic.margin:
                return Match(cat, "example", f"{n.example!r} ({n.similarity:.2f})")
        return None


def _check_keys(path: Path, where: str, table: dict, known: set[str]) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise InvalidRequest(f"moderation policy {path}: {where} has unknown keys {unknown}; known: {sorted(known)}")
