"""Categories come from the prompt alone, so curated and live battles are tagged alike."""

from __future__ import annotations

import pytest

from limner.arena.categories import CATEGORIES, categorize


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ('a round badge that says "OPEN"', ["overall", "text rendering"]),
        ("a neon sign reading “Late Night Café”", ["overall", "text rendering"]),
        ("a thumbs up, dark skin tone", ["overall", "people and skin tones"]),
        ("flexed biceps with light skin, outlined flat emoji", ["overall", "people and skin tones"]),
        ("a woman technologist emoji", ["overall", "people and skin tones"]),
        ("a beach at sunset", ["overall", "scenes"]),
        ("a red apple", ["overall", "objects"]),
        ("a cat on a skateboard", ["overall", "objects"]),
        ('a street sign that says "MAIN ST" at night', ["overall", "text rendering", "scenes"]),
        ("a surfer on an ocean wave, medium skin tone", ["overall", "people and skin tones", "scenes"]),
    ],
)
def test_categorize(prompt: str, expected: list[str]):
    assert categorize(prompt) == expected


def test_every_tag_is_a_known_category():
    for prompt in ["a red apple", 'a mug that says "HI"', "a man waving in a garden"]:
        assert set(categorize(prompt)) <= set(CATEGORIES)
        assert categorize(prompt)[0] == "overall"
