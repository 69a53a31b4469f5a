from pathlib import Path

import pytest

from limner.data.catalog import Item, family_key, list_items, openclipart_title


@pytest.fixture(scope="module")
def items(fixture_sources: Path) -> dict[tuple[str, str], Item]:
    found, _ = list_items(fixture_sources)
    return {(it.source, it.original_id): it for it in found}


def test_every_fetched_source_is_listed_and_absent_ones_are_reported(fixture_sources):
    found, missing = list_items(fixture_sources)
    assert missing == ["noto"]  # the 10 MB font is not part of the fixtures
    assert {it.source for it in found} == {
        "fluent-3d",
        "fluent-color",
        "fluent-flat",
        "fluent-high-contrast",
        "openmoji",
        "openclipart",
    }


def test_only_restricts_the_listing(fixture_sources):
    found, missing = list_items(fixture_sources, only=["openmoji"])
    assert {it.source for it in found} == {"openmoji"}
    assert missing == []


def test_empty_sources_folder_lists_nothing_and_reports_every_source(tmp_path):
    found, missing = list_items(tmp_path)
    assert found == []
    assert len(missing) == 7


@pytest.mark.parametrize(
    ("file", "tones"),
    [
        ("waving-hand-default.svg", []),
        ("waving-hand-medium.svg", ["medium"]),
        ("waving-hand-medium-dark.svg", ["medium-dark"]),  # the longer suffix wins over "-dark"
    ],
)
def test_fluent_file_name_suffixes_name_the_skin_tone(items, file, tones):
    item = items[("fluent-flat", file)]
    assert item.skin_tones == tones
    assert item.name == "waving hand"
    assert item.family == "waving-hand"
    assert "hello" in item.tags


def test_fluent_names_without_tone_variants_keep_their_whole_stem(items):
    item = items[("fluent-color", "black-large-square.svg")]
    assert (item.name, item.family, item.skin_tones) == (
        "black large square",
        "black-large-square",
        [],
    )
    assert item.kind == "svg"
    assert Path(item.path).parent.name == "modern"
    assert Path(items[("fluent-high-contrast", "red-heart.svg")].path).parent.name == "high-contrast"


def test_fluent_3d_reads_code_points_from_file_names(items):
    """Its files coded medium (1F3FD) draw medium-light skin, and are labelled as drawn."""
    toned = items[("fluent-3d", "1f44b-1f3fd.webp")]
    assert (toned.name, toned.skin_tones, toned.family, toned.kind) == (
        "waving hand",
        ["medium-light"],
        "1f44b",
        "bitmap",
    )
    assert items[("fluent-3d", "1f44b.webp")].skin_tones == []
    assert items[("fluent-3d", "2764-fe0f.webp")].name == "red heart"
    assert items[("fluent-3d", "25aa-fe0f.webp")].name == "black small square"  # unicodedata


def test_fluent_3d_skips_files_it_cannot_name(items, fixture_sources):
    on_disk = fixture_sources / "npm/lobehub__fluent-emoji-3d/package/assets/1f3f3-fe0f-200d-1f308.webp"
    assert on_disk.exists()
    assert ("fluent-3d", on_disk.name) not in items


def test_openmoji_names_tones_and_tags(items):
    handshake = items[("openmoji", "1FAF1-1F3FB-200D-1FAF2-1F3FF.svg")]
    assert handshake.name == "handshake"
    assert handshake.skin_tones == ["light", "dark"]
    assert handshake.group == "person"
    hand = items[("openmoji", "1F44B-1F3FD.svg")]
    assert (hand.name, hand.skin_tones, hand.family) == ("waving hand", ["medium"], "1f44b")
    book = items[("openmoji", "1F4D5.svg")]
    assert book.tags == ["book", "closed", "education", "read", "write"]  # tags ∪ openmoji_tags


def test_openmoji_lists_entries_whose_file_is_missing(items):
    # openmoji.json names 2B1B but the fixture has no 2B1B.svg: the build must count the failure
    missing = items[("openmoji", "2B1B.svg")]
    assert not Path(missing.path).exists()


def test_openclipart_titles_groups_and_category_tags(items):
    cross = items[("openclipart", "science/astronomy/southen_cross_01.svg")]
    assert cross.name == "southen cross"
    assert cross.group == "science"
    assert {"science", "astronomy"} <= set(cross.tags)
    arrow = items[("openclipart", "shapes/arki_arrow_down_jean_vic_.svg")]
    assert arrow.name == "arki arrow down"
    assert ("openclipart", "shapes/torn_page_01.svg") in items  # corrupt, but listed


@pytest.mark.parametrize(
    ("text", "stem", "title"),
    [
        ("<dc:title>Red Apple</dc:title>", "apple_x_01", "red apple"),
        ("<svg></svg>", "lightbulb_jon_phillips_02", "lightbulb jon"),
        ("<dc:title>drawing.svg</dc:title>", "blue_bird_01", "blue bird"),
        (f"<dc:title>{'x' * 61}</dc:title>", "too_long_01", "too long"),
    ],
)
def test_openclipart_title_falls_back_to_the_file_name(text, stem, title):
    assert openclipart_title(text, stem)[0] == title


def test_openclipart_keywords_come_from_rdf_subjects_without_links():
    text = "<rdf:li>Fruit</rdf:li><rdf:li>http://example.org/x</rdf:li><rdf:li>fruit</rdf:li>"
    assert openclipart_title(text, "apple")[1] == ["fruit"]


def test_family_key_normalises_code_points_but_not_file_names(items):
    assert family_key(items[("fluent-3d", "1f44b-1f3fd.webp")]) == "fluent-3d:1f44b"
    assert family_key(items[("fluent-flat", "waving-hand-medium.svg")]) == "fluent-flat:waving-hand"
    assert family_key(items[("openmoji", "1F44B-1F3FD.svg")]) == "openmoji:1f44b"
