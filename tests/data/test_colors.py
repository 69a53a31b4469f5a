import random

import numpy as np
import pytest
from PIL import Image

from limner.data.colors import (
    BACKGROUND_COLOURS,
    SYNONYMS,
    Background,
    background_for,
    colour_family,
    composite,
    dominant_colours,
    mean_colour,
    random_background,
)
from limner.typography.contrast import contrast_ratio


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((220, 30, 30), "red"),
        ((250, 140, 20), "orange"),
        ((120, 70, 30), "brown"),
        ((130, 120, 25), "olive"),
        ((250, 220, 40), "yellow"),
        ((40, 180, 60), "green"),
        ((20, 170, 170), "teal"),
        ((40, 80, 220), "blue"),
        ((130, 50, 200), "purple"),
        ((230, 60, 160), "pink"),
        ((250, 180, 190), "pink"),
        ((128, 128, 128), "grey"),
        ((250, 250, 250), "white"),
        ((10, 10, 10), "black"),
    ],
)
def test_colour_family_names_pixels(rgb, name):
    assert colour_family(np.array([rgb], np.uint8))[0] == name
    assert name in SYNONYMS


def _square(colour: tuple[int, int, int], size: int = 32) -> Image.Image:
    return Image.new("RGBA", (size, size), (*colour, 255))


def test_dominant_colours_of_one_and_two_colour_images():
    assert dominant_colours(_square((220, 30, 30))) == ["red"]
    img = _square((220, 30, 30), 64)
    img.paste((40, 80, 220, 255), (0, 0, 64, 32))  # top half blue
    assert sorted(dominant_colours(img)) == ["blue", "red"]


def test_dominant_colours_ignore_transparent_pixels():
    img = Image.new("RGBA", (64, 64), (40, 80, 220, 0))
    assert dominant_colours(img) == []
    img.paste(_square((40, 180, 60)), (16, 16))
    assert dominant_colours(img) == ["green"]
    assert all(abs(a - b) <= 1 for a, b in zip(mean_colour(img), (40, 180, 60), strict=True))


def test_backgrounds_describe_themselves_and_round_trip_through_dicts():
    cases = {
        Background("white"): "a white background",
        Background("flat", ("teal",)): "a plain teal background",
        Background("gradient", ("red", "blue"), "diagonal"): ("a soft gradient background from red to blue"),
    }
    for bg, words in cases.items():
        assert bg.describe() == words
        assert Background.from_dict(bg.to_dict()) == bg


def test_gradient_runs_from_first_to_second_colour():
    colours = dict(BACKGROUND_COLOURS)
    img = Background("gradient", ("red", "blue"), "vertical").render(16)
    assert img.size == (16, 16)
    assert img.getpixel((5, 0)) == colours["red"]
    assert img.getpixel((5, 15)) == colours["blue"]


def test_random_backgrounds_are_seeded_and_use_known_colours():
    names = {n for n, _ in BACKGROUND_COLOURS}
    a = [random_background(random.Random(s)) for s in range(60)]
    assert a == [random_background(random.Random(s)) for s in range(60)]
    assert {bg.kind for bg in a} == {"white", "flat", "gradient"}
    assert all(set(bg.colours) <= names for bg in a)


def test_background_for_keeps_dark_icons_off_dark_backgrounds():
    icon = _square((12, 12, 14))
    for seed in range(40):
        bg = background_for(icon, random.Random(seed))
        seen = mean_colour(bg.render(8).convert("RGBA"))
        assert contrast_ratio((12, 12, 14), seen) >= 1.6, bg


def test_composite_shows_background_through_transparent_pixels():
    img = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    img.putpixel((3, 3), (200, 10, 10, 255))
    out = composite(img, Background("flat", ("blue",)))
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == dict(BACKGROUND_COLOURS)["blue"]
    assert out.getpixel((3, 3)) == (200, 10, 10)
