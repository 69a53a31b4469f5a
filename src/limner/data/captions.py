"""Caption phrasings for a corpus image, built from its name, keywords, style, skin tone and colours.

Several phrasings per image, so that "a crimson apple, 3D" and "red apple emoji in 3D style" both
land near the same picture. Pure functions of the record and a seeded ``random.Random``.

People with a skin tone get no colour words: the dominant colour of a person emoji is its skin
or its clothes, so the corpus used to say "a tangerine artist with light skin tone" and "a
crimson artist with dark skin tone", colour words that contradict or blur the tone the caption
is meant to teach (issue 23).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from limner.data.colors import SYNONYMS, Background
from limner.typography.words import article

STYLE_WORDS: dict[str, list[str]] = {
    "3D render": ["3D render", "3D style", "3D emoji", "glossy 3D illustration"],
    "glossy colour icon": [
        "colourful gradient icon",
        "glossy colour emoji",
        "gradient vector icon",
    ],
    "flat icon": ["flat icon", "flat vector illustration", "flat design emoji"],
    "black and white line icon": [
        "black and white line icon",
        "high contrast icon",
        "monochrome outline icon",
    ],
    "outlined flat emoji": [
        "flat emoji with black outlines",
        "outlined cartoon icon",
        "line-art emoji",
    ],
    "cartoon emoji": ["cartoon emoji", "emoji", "cute cartoon icon"],
    "clip art": ["clip art", "vector clip art", "clipart drawing"],
}


@dataclass
class Subject:
    """What a caption can say about one image."""

    name: str
    style: str
    tags: list[str] = field(default_factory=list)
    group: str = ""
    skin_tones: list[str] = field(default_factory=list)
    colours: list[str] = field(default_factory=list)


def tone_phrase(tones: list[str]) -> str:
    """['dark'] → 'dark skin tone'; ['light', 'dark'] → 'light and dark skin tones'."""
    if not tones:
        return ""
    unique = list(dict.fromkeys(tones))
    if len(unique) == 1:
        return f"{unique[0]} skin tone"
    return f"{' and '.join(unique)} skin tones"


def captions(subject: Subject, background: Background | None, rng: random.Random, n: int = 4) -> list[str]:
    """``n`` distinct phrasings (fewer only if the templates run out), most specific first."""
    name = subject.name
    styles = STYLE_WORDS.get(subject.style, [subject.style])
    style = rng.choice(styles)
    tone = tone_phrase(subject.skin_tones)
    named_colours = [] if tone else subject.colours
    colour = " ".join(rng.choice(SYNONYMS.get(c, [c])) for c in named_colours[:1])
    colours = " and ".join(named_colours)
    tags = [t for t in subject.tags if t.lower() not in name.lower()]
    keywords = ", ".join(rng.sample(tags, min(3, len(tags))))
    bg = background.describe() if background else ""
    on_bg = f" on {bg}" if bg else ""
    with_tone = f" with {tone}" if tone else ""
    comma_tone = f", {tone}" if tone else ""

    candidates = [
        f"{name}{comma_tone}, {style}{',' if bg else ''}{on_bg}",
        f"{article((colour + ' ' + name).strip())}{with_tone}, {rng.choice(styles)}{on_bg}",
        f"{rng.choice(styles)} of {article(name)}{with_tone}" + (f", {keywords}" if keywords else ""),
        f"{name}{comma_tone}",
        f"{(colours + ' ' if colours else '')}{name} {rng.choice(['icon', 'picture', 'image'])}"
        f"{comma_tone}, {rng.choice(styles)}",
    ]
    if subject.group and subject.group not in name:
        candidates.append(f"{article(subject.group)}: {name}{comma_tone}, {style}")
    out: list[str] = []
    for c in candidates:
        c = " ".join(c.split())
        if c not in out:
            out.append(c)
    return out[:n]


def as_drawn(source: str, key: str, tones: list[str], caps: list[str]) -> tuple[list[str], list[str]]:
    """A packed record's skin tones and captions as its image draws them. A source whose files
    draw another tone than their code points name (``catalog.DRAWN_AS``), packed from a corpus
    built before its labels were fixed, says the code points' tone: the labels are corrected and
    the captions' tone phrase swapped. A record already labelled as drawn is returned as it is."""
    from limner.data.catalog import DRAWN_AS, tones_drawn

    if source not in DRAWN_AS or not tones:
        return tones, caps
    drawn = tones_drawn(source, key.split("_", 1)[-1])  # record keys are SOURCE_CODEPOINTS
    if drawn == tones or len(drawn) != len(tones):
        return tones, caps
    old, new = tone_phrase(tones), tone_phrase(drawn)
    return drawn, [c.replace(old, new) for c in caps]


def recaption(meta: dict) -> list[str]:
    """A built record's captions under today's phrasing: a record with a skin tone whose captions
    still put a colour word before its name ("a tangerine artist") is captioned again (seeded by
    its key) from its stored metadata; every other record keeps its captions."""
    if not meta.get("skin_tones"):
        return meta["captions"]
    name = meta["name"].lower()
    words = {w for c in meta.get("colours", []) for w in SYNONYMS.get(c, [c])}
    if not any(f"{w} {name}" in c.lower() for c in meta["captions"] for w in words):
        return meta["captions"]
    from limner.data.colors import Background

    subject = Subject(
        meta["name"],
        meta["style"],
        meta.get("tags", []),
        meta.get("group", ""),
        meta["skin_tones"],
        meta.get("colours", []),
    )
    bg = Background.from_dict(meta["background"]) if meta.get("background") else None
    return captions(subject, bg, random.Random(f"recaption:{meta['key']}"), n=len(meta["captions"]))
