"""The colour reader behind issue 21's simulated voters, and the paired bootstrap they are read with."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from limner.eval.colour import asked_colour, reads_as, subject_colours
from limner.eval.paired import bootstrap_change


@pytest.mark.parametrize(
    ("prompt", "colour"),
    [
        ("a crimson kite on a blue background", "red"),
        ("a teal kite, clip art, on a white background", "teal"),
        ("An Emerald star", "green"),
        ("a golden crown, 3D emoji", "yellow"),
        ("a kite on a soft gradient background from red to sky blue", None),
        ("a star with a purple background", None),
        ("a kite with red stripes on a blue background", "red"),
        ("a rocket", None),
        ("a redwood tree", None),  # a colour word, not a word that starts with one
    ],
)
def test_asked_colour(prompt: str, colour: str | None) -> None:
    assert asked_colour(prompt) == colour


def disc(fill: tuple[int, int, int], background=(255, 255, 255), outline=None, width: int = 0) -> Image.Image:
    im = Image.new("RGB", (256, 256), background)
    ImageDraw.Draw(im).ellipse((48, 48, 208, 208), fill=fill, outline=outline, width=width)
    return im


def test_a_coloured_subject_reads_as_its_colour_whatever_the_background() -> None:
    red = disc((220, 30, 30))
    assert reads_as(red, "red") and not reads_as(red, "orange")
    assert subject_colours(red)["red"] > 0.9  # the white around it is background, not subject
    on_blue = disc((230, 200, 20), background=(30, 60, 200))
    assert reads_as(on_blue, "yellow") and not reads_as(on_blue, "blue")


def test_outlines_may_share_the_subject_but_a_grey_one_is_no_colour() -> None:
    outlined = disc((40, 170, 60), outline=(0, 0, 0), width=14)
    assert subject_colours(outlined)["black"] > 0.1
    assert reads_as(outlined, "green")
    assert not reads_as(disc((128, 128, 128)), "yellow")
    assert reads_as(disc((150, 90, 20)), "orange")  # shaded orange (brown to the caption writer)
    olive = disc((130, 120, 25))
    assert not reads_as(olive, "red") and not reads_as(olive, "yellow")
    # a little teal on a grey subject is the commonest colour, but too little of the subject to count
    im = disc((128, 128, 128))
    ImageDraw.Draw(im).ellipse((110, 110, 146, 146), fill=(20, 180, 180))
    assert 0 < subject_colours(im)["teal"] < 0.2
    assert not reads_as(im, "teal")


def test_bootstrap_change_is_the_mean_change_and_resamples_prompts_together() -> None:
    rng = np.random.default_rng(0)
    same = np.zeros((2, 50))
    assert bootstrap_change(same, rng) == {"change": 0.0, "interval": [0.0, 0.0], "prompts": 50, "per_pair": [0, 0]}
    # every prompt moved by +0.1 on one seed and +0.3 on the other: +0.2 exactly, no spread
    shift = np.stack([np.full(40, 0.1), np.full(40, 0.3)])
    got = bootstrap_change(shift, rng)
    assert got["change"] == pytest.approx(0.2) and got["interval"] == pytest.approx([0.2, 0.2])
    assert got["per_pair"] == pytest.approx([0.1, 0.3])
    # half the prompts gain 1, half nothing: the interval spans 0.5 and is about ±1.96·0.5/√n wide
    half = np.tile(np.r_[np.ones(100), np.zeros(100)], (2, 1))
    lo, hi = bootstrap_change(half, rng, rounds=4000)["interval"]
    assert lo < 0.5 < hi and 0.05 < hi - lo < 0.2
