import json
from pathlib import Path

import pytest

from limner.engine.tones import TONES, named_tone, without_tone

PROMPTS = Path(__file__).resolve().parents[2] / "bench" / "prompts" / "skin_tones.jsonl"


def test_every_eval_skin_tone_prompt_names_its_tone_and_loses_only_the_tone():
    for line in PROMPTS.read_text().splitlines():
        row = json.loads(line)
        assert named_tone(row["prompt"]) == row["tone"], row
        rest = without_tone(row["prompt"])
        assert named_tone(rest) is None and "skin" not in rest
        assert row["concept"].lower() in rest.lower()


@pytest.mark.parametrize(
    ("prompt", "tone", "rest"),
    [
        ("a waving hand with dark skin tone, 3D render", "dark", "a waving hand, 3D render"),
        ("thumbs up: medium-light skin tone", "medium-light", "thumbs up"),
        ("a farmer (medium-dark skin tone), flat icon", "medium-dark", "a farmer, flat icon"),
        ("people holding hands: light and dark skin tones, 3D", "light", "people holding hands, 3D"),
        ("a dark-skinned farmer", "dark", "a farmer"),
        ("a night sky, dark blue, light rain", None, "a night sky, dark blue, light rain"),
        ("light skin tone", "light", ""),
    ],
)
def test_tone_phrases(prompt, tone, rest):
    assert named_tone(prompt) == tone and without_tone(prompt) == rest
    assert tone is None or tone in TONES
