"""The skin-tone reader on drawings whose tones are known: synthetic emoji in two palettes, and
the fixture corpus's real emoji."""

from pathlib import Path

import numpy as np
import pytest

from limner.eval.tone import (
    TONES,
    ReaderConfig,
    ToneReader,
    background,
    calibrate,
    calibrate_corpus,
    drawn_tones,
    foreground,
    toned_records,
)

# Two styles that draw the five tones in different colours. In "outlined", light-skinned people
# have hair in the colour of medium-dark skin, as OpenMoji draws them.
SKIN = {
    "flat": [(243, 189, 170), (222, 184, 144), (193, 141, 104), (150, 101, 80), (105, 70, 49)],
    "outlined": [(250, 220, 188), (228, 170, 130), (190, 130, 90), (160, 106, 75), (95, 60, 40)],
}
CLOTHES, OUTLINE, DARK_HAIR = (40, 90, 210), (25, 25, 25), (60, 40, 30)
PEACH, BROWN, WHITE = (252, 205, 170), (120, 80, 45), (255, 255, 255)


def gradient(a, b, side=64) -> np.ndarray:
    w = np.linspace(0, 1, side)[:, None, None]  # vertical
    return (np.array(a) * (1 - w) + np.array(b) * w).repeat(side, 1).round().astype(np.uint8)


def person(
    style: str, tone: int, bg, rng: np.random.Generator, skin=None, hair_line: float = -1 / 3
) -> tuple[np.ndarray, np.ndarray]:
    """A face, hair down to ``hair_line`` head radii below its centre and a shirt on a background:
    (rgb, subject mask)."""
    img = gradient(*bg) if isinstance(bg[0], tuple) else np.full((64, 64, 3), bg, dtype=np.uint8)
    mask = np.zeros((64, 64), dtype=bool)
    cy, cx, r = rng.integers(22, 30), rng.integers(26, 38), rng.integers(9, 14)
    yy, xx = np.mgrid[0:64, 0:64]
    head = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
    outline = ((yy - cy) ** 2 + (xx - cx) ** 2 < (r + 1.5) ** 2) & ~head
    hair = head & (yy < cy + hair_line * r)
    shirt = (yy > cy + r + 2) & (abs(xx - cx) < r + 6)
    hair_colour = SKIN["outlined"][3] if (style == "outlined" and tone == 0) else DARK_HAIR
    for region, colour in (
        (outline, OUTLINE),
        (head, skin or SKIN[style][tone]),
        (hair, hair_colour),
        (shirt, CLOTHES),
    ):
        img[region] = colour
        mask |= region
    return img, mask


BACKGROUNDS = [WHITE, PEACH, BROWN, (WHITE, PEACH), (PEACH, BROWN), (20, 30, 80)]


def line_icon(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A black outline of a face and a shirt on white, as high-contrast icons draw people."""
    img, mask = person("flat", 0, WHITE, rng)
    drawn = np.all(img == OUTLINE, axis=-1) | np.all(img == CLOTHES, axis=-1)
    img[mask & ~drawn] = 255
    img[np.all(img == CLOTHES, axis=-1)] = OUTLINE
    return img, mask


@pytest.fixture(scope="module")
def reader() -> ToneReader:
    rng = np.random.default_rng(0)
    samples = [
        (*person(style, t, BACKGROUNDS[i % len(BACKGROUNDS)], rng), TONES[t], style)
        for style in SKIN
        for t in range(5)
        for i in range(6)
    ]
    # emoji that draw no tone: yellow people and line icons
    samples += [(*person("flat", 0, BACKGROUNDS[i % 6], rng, skin=(255, 200, 40)), None, "flat") for i in range(6)]
    samples += [(*line_icon(rng), None, "line") for _ in range(3)]
    return calibrate(samples)


def test_background_plane_is_exact_on_a_gradient_and_ignores_a_subject_at_the_edge():
    img = gradient(PEACH, BROWN)
    fit, noise = background(img)
    np.testing.assert_allclose(fit, img, atol=1.0)
    assert noise < 1.0
    img[20:40, 0:15] = CLOTHES  # touches the left border
    mask = foreground(img)
    expected = np.zeros((64, 64), dtype=bool)
    expected[20:40, 0:15] = True
    assert (mask == expected).all()


def test_reader_reads_every_tone_of_both_palettes_on_skin_coloured_backgrounds(reader: ToneReader):
    rng = np.random.default_rng(1)  # fresh drawings, new positions and sizes
    for style in SKIN:
        for t in range(5):
            for bg in BACKGROUNDS:
                img, _ = person(style, t, bg, rng)
                assert reader.read(img) == TONES[t], (style, TONES[t], bg)


def test_hair_in_another_tones_skin_colour_does_not_fool_the_reader(reader: ToneReader):
    img, _ = person("outlined", 0, WHITE, np.random.default_rng(2), hair_line=0.3)
    hair = np.all(img == SKIN["outlined"][3], axis=-1).sum()
    assert hair > np.all(img == SKIN["outlined"][0], axis=-1).sum()  # more hair than skin
    assert reader.read(img) == "light"


def test_no_tone_is_read_where_no_skin_is_drawn(reader: ToneReader):
    rng = np.random.default_rng(3)
    yellow_face, _ = person("flat", 0, WHITE, rng, skin=(255, 200, 40))
    grey = np.full((64, 64, 3), 128, dtype=np.uint8)
    grey[20:44, 20:44] = 60
    assert reader.read(yellow_face) is None
    assert reader.read(grey) is None
    assert reader.read(np.full((64, 64, 3), PEACH, dtype=np.uint8)) is None  # a skin-coloured background alone
    assert reader.read(line_icon(rng)[0]) is None


def test_reader_round_trips_through_its_file(tmp_path: Path, reader: ToneReader):
    reader.save(tmp_path / "reader.safetensors")
    loaded = ToneReader.load(tmp_path / "reader.safetensors")
    assert loaded.config == reader.config and loaded.styles == reader.styles == ["flat", "outlined"]
    assert loaded.meta == {"images": 60, "toneless_images": 9}
    img, _ = person("outlined", 2, PEACH, np.random.default_rng(4))
    np.testing.assert_allclose(loaded.scores(img)[0], reader.scores(img)[0], rtol=1e-3)  # stored as float16
    assert loaded.read(img) == "medium"
    with pytest.raises(ValueError, match="calibrate-tones"):
        from safetensors.numpy import save_file

        save_file({"log_p": np.zeros((5, 8), dtype=np.float16)}, str(tmp_path / "other.safetensors"))
        ToneReader.load(tmp_path / "other.safetensors")


def test_drawn_tones_swap_fluent_3d_medium_light_and_medium_only():
    assert drawn_tones({"source": "fluent-3d", "original_id": "1f44b-1f3fc.webp", "skin_tones": ["medium-light"]}) == [
        "medium"
    ]
    assert drawn_tones({"source": "fluent-3d", "original_id": "1f44b-1f3fd.webp", "skin_tones": ["medium"]}) == [
        "medium-light"
    ]
    assert drawn_tones({"source": "fluent-3d", "original_id": "1f44b-1f3ff.webp", "skin_tones": ["dark"]}) == ["dark"]
    flat = {"source": "fluent-flat", "original_id": "waving-hand-medium.svg", "skin_tones": ["medium"]}
    assert drawn_tones(flat) == ["medium"]


def test_calibrated_on_the_fixture_corpus_it_reads_its_real_emoji_back(tmp_path: Path, built_corpus: Path):
    reader = calibrate_corpus(built_corpus, tmp_path / "reader.safetensors", ReaderConfig())
    records = list(toned_records(built_corpus, "train"))
    # Fluent 3D's waving hand coded medium draws medium-light; OpenMoji medium; Fluent flat medium and medium-dark
    assert sorted((meta["source"], tone) for _, _, tone, meta in records) == [
        ("fluent-3d", "medium-light"),
        ("fluent-flat", "medium"),
        ("fluent-flat", "medium-dark"),
        ("openmoji", "medium"),
    ]
    assert [reader.read(rgb) for rgb, *_ in records] == [tone for _, _, tone, _ in records]
    assert ToneReader.load(tmp_path / "reader.safetensors").meta["images"] == 4
