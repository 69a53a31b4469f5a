"""Leaderboard categories, tagged from the prompt alone (so live and curated battles agree)."""

from __future__ import annotations

import re

from limner.typography.parse import parse

CATEGORIES = ("overall", "text rendering", "people and skin tones", "objects", "scenes")
PEOPLE = re.compile(
    r"\b(person|people|man|men|woman|women|boy|girl|child|baby|hand|hands|thumbs?|fist|biceps|"
    r"skin|skinned|skin tones?|family|couple|farmer|cook|doctor|teacher|technologist|scientist|student|"
    r"astronaut|artist|singer|pilot|firefighter|police|guard|worker|dancer|runner|swimmer|surfer|"
    r"snowboarder|skier|waving|clapping)\b",
    re.I,
)
SCENES = re.compile(
    r"\b(landscape|scene|city|street|beach|mountain|forest|sea|ocean|sky|night|sunset|sunrise|room|"
    r"kitchen|garden|park|desert|island|river|lake|snow|rain|space|planet|village|town|interior)\b",
    re.I,
)


def categorize(prompt: str) -> list[str]:
    """'overall' plus every category the prompt falls in ('objects' when nothing more specific)."""
    cats = ["overall"]
    parsed = parse(prompt)
    if parsed.has_text:
        cats.append("text rendering")
    # words inside the quoted text are to be written, not drawn: "a mug that says "BEACH"" is no scene
    if PEOPLE.search(parsed.scene):
        cats.append("people and skin tones")
    if SCENES.search(parsed.scene):
        cats.append("scenes")
    if len(cats) == 1:
        cats.append("objects")
    return cats
