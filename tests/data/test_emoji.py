from pathlib import Path

import pytest

from limner.data.emoji import (
    GROUPS,
    TONE_NAMES,
    EmojiIndex,
    _clean_label,
    base_hex,
    hex_to_text,
    normalize_hex,
    skin_tones_of,
    slug,
)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("1F44B-1F3FB", "1f44b-1f3fb"),
        ("1f44b_1f3fb", "1f44b-1f3fb"),
        ("2716-FE0F", "2716"),
        ("1F3F3-FE0F-200D-1F308", "1f3f3-200d-1f308"),
        ("1f647-1f3fc-200d-2640-fe0f", "1f647-1f3fc-200d-2640"),
        ("1F44B", "1f44b"),
    ],
)
def test_normalize_hex_lowercases_joins_with_dashes_and_drops_fe0f(code, expected):
    assert normalize_hex(code) == expected


@pytest.mark.parametrize(
    ("code", "tones"),
    [
        ("1F44B", []),
        ("1F44B-1F3FB", ["light"]),
        ("1f44b_1f3ff", ["dark"]),
        ("1f647-1f3fc-200d-2640-fe0f", ["medium-light"]),
        ("1FAF1-1F3FB-200D-1FAF2-1F3FF", ["light", "dark"]),  # handshake, two hands
        ("1F9D1-1F3FD-200D-1F91D-200D-1F9D1-1F3FD", ["medium", "medium"]),
        ("1F9D1-1F3FE-200D-1F91D-200D-1F9D1-1F3FC", ["medium-dark", "medium-light"]),
    ],
)
def test_skin_tones_of_reads_fitzpatrick_modifiers_in_order(code, tones):
    assert skin_tones_of(code) == tones


def test_the_five_tones_run_light_to_dark():
    assert TONE_NAMES == ["light", "medium-light", "medium", "medium-dark", "dark"]
    assert [skin_tones_of(f"1f44b-{m}")[0] for m in ("1f3fb", "1f3fc", "1f3fd", "1f3fe", "1f3ff")] == (TONE_NAMES)


def test_base_hex_is_shared_by_every_tone_variant():
    variants = ["1F44B", "1f44b-1f3fb", "1F44B-1F3FD", "1f44b_1f3ff"]
    assert {base_hex(v) for v in variants} == {"1f44b"}
    assert base_hex("1FAF1-1F3FB-200D-1FAF2-1F3FF") == "1faf1-200d-1faf2"
    assert base_hex("1f647-1f3fc-200d-2640-fe0f") == "1f647-200d-2640"


def test_hex_to_text_and_slug():
    assert hex_to_text("1f44b-1f3fd") == "\U0001f44b\U0001f3fd"
    assert hex_to_text("2764_fe0f") == "\u2764\ufe0f"
    assert slug("Flag of Côte d’Ivoire!") == "flag-of-c-te-d-ivoire"


@pytest.mark.parametrize(
    ("label", "name"),
    [
        ("waving hand: medium skin tone", "waving hand"),
        ("handshake: light skin tone, dark skin tone", "handshake"),
        ("flag: Japan", "flag of Japan"),
        ("keycap: 1", "keycap, 1"),
        ("red heart", "red heart"),
    ],
)
def test_labels_lose_their_skin_tone_and_flags_read_naturally(label, name):
    assert _clean_label(label) == name


@pytest.fixture(scope="module")
def index(fixture_sources: Path) -> EmojiIndex:
    return EmojiIndex.load(fixture_sources / "npm" / "emojibase-data")


def test_index_finds_emoji_with_or_without_variation_selector(index):
    assert index.lookup("2764-fe0f").name == "red heart"
    assert index.lookup("2764").name == "red heart"
    assert "love" in index.lookup("2764").tags


def test_index_maps_emojibase_groups_to_caption_groups(index):
    assert index.lookup("1f44b").group == "person"
    assert index.lookup("1f4d5").group == "object"
    assert index.lookup("2b1b").group == "symbol"
    assert set(GROUPS.values()) >= {i.group for i in index.by_hex.values()}


def test_tone_variants_share_the_base_emoji_name(index):
    assert index.lookup("1F44B-1F3FD").name == "waving hand"
    # a tone variant emojibase does not list falls back to its base sequence
    assert index.lookup("1f44b-1f3ff").name == "waving hand"
    # multi-tone sequences are listed under their base emoji's skins
    assert index.lookup("1FAF1-1F3FB-200D-1FAF2-1F3FF").name == "handshake"


def test_index_falls_back_to_unicodedata_for_lone_code_points(index):
    assert index.lookup("25aa-fe0f").name == "black small square"
    # a sequence neither emojibase nor unicodedata can name is not guessed at
    assert index.lookup("1f3f3-fe0f-200d-1f308") is None


def test_index_by_slug_matches_fluent_file_names(index):
    assert index.by_slug["waving-hand"].name == "waving hand"
    assert index.by_slug["black-large-square"].tags == ["black", "geometric", "large", "square"]


def test_index_without_emojibase_still_names_single_code_points(tmp_path):
    empty = EmojiIndex.load(None)
    assert empty.by_hex == {}
    assert empty.lookup("1f4d5").name == "closed book"
    assert EmojiIndex.load(tmp_path).by_hex == {}  # folder without data.json
