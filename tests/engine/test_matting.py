"""Transparent backgrounds: the border's colour, where connected to the border, is cut out."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from limner.engine.matting import PHRASE, cut_out, prompt_for


def ring_on_white() -> Image.Image:
    """A red ring on white: white outside (background) and white inside the ring (part of the drawing)."""
    img = Image.new("RGB", (128, 128), (250, 250, 250))
    ImageDraw.Draw(img).ellipse((24, 24, 104, 104), outline=(200, 30, 30), width=12)
    return img


def test_the_background_goes_and_the_drawing_stays():
    alpha = np.asarray(cut_out(ring_on_white()).getchannel("A"))
    assert alpha[2, 2] == 0 and alpha[-3, 64] == 0  # outside: transparent
    assert alpha[64, 28] == 255  # the ring itself
    assert alpha[64, 64] == 255  # white inside the ring is not background: it does not touch the border


def test_the_prompt_asks_for_a_plain_background_unless_it_names_one():
    assert prompt_for("a red apple") == f"a red apple, {PHRASE}"
    assert prompt_for("a red apple on a blue background") == "a red apple on a blue background"
