import numpy as np
import pytest
from PIL import Image

from limner.errors import InvalidRequest
from limner.typography.contrast import MIN_CONTRAST, contrast_ratio
from limner.typography.fonts import find_fonts
from limner.typography.pipeline import check_request_text, colours_of, finish, prepare, style_of

PROMPTS = [
    'a poster with the title "SUMMER SALE" and the subtitle "today only", bold lettering, on a red background',
    "a green sign that says EXIT NOW",
    "an infographic titled “Getting Started” with three steps: Learn, Practice, Teach, Share",
    "a flowchart from Idea to Design to Build to Launch",
    'a bar chart titled "Sales" with bars: North, South, East, West, Central',
    'a round badge that says "ΚΑΛΗΜΕΡΑ"',
    'a poster that reads "the quick brown fox jumps over the lazy dog near the old river bank today"',
    "a handwritten price tag label 'Fresh Bread'",
    'a sign with "LINE ONE\\nLINE TWO\\nLINE THREE"',
]


@pytest.fixture(scope="module")
def fonts():
    found = find_fonts()
    if not found:
        pytest.skip("no system fonts (install fonts-dejavu-core)")
    return found


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_layout_never_clips_or_overflows_a_span(fonts, prompt, seed):
    scene = prepare(prompt, seed, 256, fonts=fonts).scene
    assert scene is not None and scene.spans
    glyph = np.asarray(scene.glyph) > 0
    covered = np.zeros_like(glyph)
    for span in scene.spans:
        x0, y0, x1, y1 = span.box
        a0, b0, a1, b1 = span.allotted
        assert 0 <= x0 < x1 <= 256 and 0 <= y0 < y1 <= 256, span  # on the canvas
        assert a0 <= x0 and b0 <= y0 and x1 <= a1 and y1 <= b1, span  # inside the box it was given
        assert span.size >= 8, span  # never shrunk to illegible
        covered[y0:y1, x0:x1] = True
    assert not (glyph & ~covered).any()  # no ink outside the recorded boxes


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("seed", range(6))
def test_text_contrasts_at_least_4_5_to_1_with_what_is_behind_it(fonts, prompt, seed):
    scene = prepare(prompt, seed, 256, fonts=fonts).scene
    for span in scene.spans:
        assert span.behind, span
        for colour in span.behind:
            assert contrast_ratio(span.colour, colour) >= MIN_CONTRAST, (span.text, span.colour, colour)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_same_prompt_and_seed_same_layout(fonts, prompt):
    a, b = prepare(prompt, 7, 256, fonts=fonts).scene, prepare(prompt, 7, 256, fonts=fonts).scene
    assert a.spans == b.spans
    assert a.glyph.tobytes() == b.glyph.tobytes() and a.image.tobytes() == b.image.tobytes()
    c = prepare(prompt, 8, 256, fonts=fonts).scene
    assert [s.text for s in c.spans] == [s.text for s in a.spans]  # another seed: same words


def test_every_quoted_string_is_laid_out_exactly(fonts):
    scene = prepare(PROMPTS[0], 0, 256, fonts=fonts).scene
    assert [s.text for s in scene.spans] == ["SUMMER SALE", "today only"]


def test_text_no_font_can_draw_is_refused_naming_the_characters(fonts):
    with pytest.raises(InvalidRequest) as e:
        check_request_text('a sign that says "你好"', "auto")
    assert "U+4F60" in e.value.message and e.value.param == "prompt"
    check_request_text('a sign that says "你好"', "off")  # nothing to draw when typography is off


def test_unknown_mode_is_refused():
    with pytest.raises(InvalidRequest):
        check_request_text("a poster", "fancy")


def test_finish_sets_the_exact_strings_readably_on_any_image(fonts):
    from PIL import ImageFilter

    prepared = prepare('a poster with the title "OPEN"', 3, 256, fonts=fonts)
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8))
    out = np.asarray(finish(noise, prepared)).astype(int)
    glyph = prepared.scene.glyph
    inside = out[np.asarray(glyph) > 200]
    assert inside.std(0).max() < 10  # one solid colour where the letters are
    plate = np.zeros(out.shape[:2], dtype=bool)
    for span in prepared.scene.spans:
        x0, y0, x1, y1 = span.box
        plate[max(0, y0 - 10) : y1 + 10, max(0, x0 - 10) : x1 + 10] = True
    far = ~plate & (np.asarray(glyph.filter(ImageFilter.MaxFilter(21))) == 0)  # beyond the wiped plate
    assert np.array_equal(out[far], np.asarray(noise)[far])  # the rest of the image is untouched
    x0, y0, x1, y1 = prepared.scene.spans[0].box
    board = out[y0:y1, x0:x1][np.asarray(glyph)[y0:y1, x0:x1] == 0]
    assert board.std(0).max() < 10  # the text sits on a clean plate, not on the noise


def test_modes(fonts):
    prompt = 'a poster with the title "OPEN"'
    img = Image.new("RGB", (256, 256), (200, 50, 50))
    assert prepare(prompt, 0, 256, "off", fonts).glyph is None
    glyph_only = prepare(prompt, 0, 256, "glyph", fonts)
    assert glyph_only.glyph is not None and finish(img, glyph_only) is img
    assert prepare("a red apple", 0, 256, "auto", fonts).glyph is None


def test_style_and_colour_words_are_read():
    assert style_of("a handwritten note", "poster") == "handwritten"
    assert style_of("a retro neon sign", "sign") == "script"
    assert style_of("a plain poster", "poster") is None
    bg, fill = colours_of("a green sign on a red background")
    assert bg == (214, 40, 40) and fill == (60, 170, 80)


def test_every_corpus_scene_keeps_its_text_readable(fonts):
    import random

    from limner.typography.scenes import make_scene

    for seed in range(120):
        scene = make_scene(random.Random(seed), 128, fonts)
        for span in scene.spans:
            for colour in span.behind:
                assert contrast_ratio(span.colour, colour) >= MIN_CONTRAST, (seed, scene.kind, span.text)


def test_long_bar_labels_turn_the_bars_across_and_stay_readable(fonts):
    prompt = 'bar graph titled "Weekly Steps": bars "Monday", "Tuesday", "Wednesday", "Thursday", "Friday"'
    spans = prepare(prompt, 1000, 256, fonts=fonts).scene.spans
    labels = [s for s in spans if s.role == "label"]
    assert [s.text for s in labels] == ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
    assert min(s.size for s in labels) >= 256 // 20  # not the 6 px a slot under a vertical bar allows
    boxes = [s.box for s in spans]
    for i, a in enumerate(boxes):  # no two strings overlap
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
    short = prepare('a bar chart titled "Sales" with bars: N, S', 1000, 256, fonts=fonts).scene.spans
    assert {s.text for s in short if s.role == "label"} == {"N", "S"}


def test_figures_stand_as_tall_as_capitals_in_every_style(fonts):
    # old-style figures (EB Garamond's default; its bold has no lining ones) make "ROOM 101" read
    # as "ROOM IOI"
    from limner.typography.fonts import FONT_FEATURES, lining_figures

    if not FONT_FEATURES:
        pytest.skip("Pillow without libraqm cannot pick lining figures")
    for style, paths in fonts.items():
        scene = prepare(f'a sign that says "ROOM 101", {style} lettering', 3, 256, fonts={style: paths}).scene
        (span,) = scene.spans
        font = next(p for p in paths if p.name == span.font)
        assert lining_figures(font), (style, span.font)
