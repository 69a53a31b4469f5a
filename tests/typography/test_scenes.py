import random
from pathlib import Path

import numpy as np
import pytest

from limner.typography.fonts import find_fonts
from limner.typography.scenes import SCENES, make_scene

COMIC_NEUE = "deb/fonts-comic-neue/usr/share/fonts/opentype/comic-neue/ComicNeue-Bold.otf"


@pytest.fixture(scope="module")
def only_handwriting(fixture_sources: Path) -> dict[str, list[Path]]:
    """One font, and not a sans: scenes must still draw every text with it."""
    return {"handwritten": [fixture_sources / COMIC_NEUE]}


def test_fetched_fonts_are_found_by_style(fixture_sources):
    fonts = find_fonts([fixture_sources / "deb/fonts-comic-neue"])
    assert fonts["handwritten"][0] == fixture_sources / COMIC_NEUE


@pytest.mark.parametrize("kind", sorted(SCENES))
def test_every_scene_kind_draws_its_text_on_image_and_glyph_canvas(only_handwriting, kind):
    scene = make_scene(random.Random(kind), 96, only_handwriting, kind=kind)
    assert scene.kind == kind
    assert scene.image.mode == "RGB" and scene.image.size == (96, 96)
    assert scene.glyph.mode == "L" and scene.glyph.size == (96, 96)
    assert scene.spans
    glyph = np.asarray(scene.glyph) > 127  # (96, 96) bool
    for span in scene.spans:
        x0, y0, x1, y1 = span.box
        assert glyph[y0:y1, x0:x1].any(), span.text
        assert span.text in scene.caption
        assert span.font == "ComicNeue-Bold.otf"
    assert "handwritten lettering" in scene.caption


def test_scenes_are_a_function_of_the_seed(only_handwriting):
    a = make_scene(random.Random(5), 64, only_handwriting)
    b = make_scene(random.Random(5), 64, only_handwriting)
    assert a.caption == b.caption and a.spans == b.spans
    assert a.image.tobytes() == b.image.tobytes()
    assert a.glyph.tobytes() == b.glyph.tobytes()
