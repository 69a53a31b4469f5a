import re
from pathlib import Path

import pytest
from PIL import Image

from limner.data.raster import (
    FILL,
    frame,
    load_bitmap,
    native_resolution,
    render_emoji_glyph,
    render_svg,
)
from limner.errors import SourceUnavailable

OPENMOJI_SVG = "npm/openmoji/package/color/svg"
CORRUPT = "deb/openclipart-svg/usr/share/openclipart/svg/shapes/torn_page_01.svg"


def test_render_svg_gives_rgba_with_visible_content(fixture_sources):
    img = render_svg(fixture_sources / OPENMOJI_SVG / "2764.svg")
    assert img.mode == "RGBA"
    assert img.width == 512
    assert img.getchannel("A").getbbox() is not None


@pytest.mark.parametrize(
    "path",
    [CORRUPT, f"{OPENMOJI_SVG}/2B1B.svg"],  # truncated XML; a file openmoji.json lists but lacks
)
def test_unreadable_svgs_raise_source_unavailable_naming_the_file(fixture_sources, path):
    with pytest.raises(SourceUnavailable, match=re.escape(Path(path).name)):
        render_svg(fixture_sources / path)


def test_text_that_is_not_svg_is_refused_with_the_file_name(tmp_path):
    notes = tmp_path / "notes.svg"
    notes.write_text("just some notes")
    with pytest.raises(SourceUnavailable, match=r"notes\.svg.*no <svg> element"):
        render_svg(notes)


def test_physical_units_and_percentages_on_the_root_are_accepted(tmp_path):
    svg = tmp_path / "mm.svg"
    svg.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="20mm" height="10mm" viewBox="0 0 20 10">'
        '<rect width="20" height="10" fill="#123456"/></svg>'
    )
    img = render_svg(svg, long_side=64)
    assert img.size == (64, 32)
    assert img.getpixel((10, 10)) == (0x12, 0x34, 0x56, 255)
    svg.write_text(svg.read_text().replace('"20mm"', '"100%"').replace('"10mm"', '"100%"'))
    assert render_svg(svg, long_side=64).size == (64, 32)


def test_drawings_small_on_their_page_are_rendered_larger(tmp_path):
    svg = tmp_path / "dot.svg"
    svg.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
        '<circle cx="50" cy="50" r="5" fill="red"/></svg>'
    )
    img = render_svg(svg, long_side=128)
    assert native_resolution(img) > 0.5 * 128


def test_load_bitmap_reads_webp_and_names_bad_files(fixture_sources, tmp_path):
    img = load_bitmap(fixture_sources / "npm/lobehub__fluent-emoji-3d/package/assets/1f4d5.webp")
    assert (img.mode, img.size) == ("RGBA", (256, 256))
    bad = tmp_path / "broken.webp"
    bad.write_bytes(b"RIFF0000WEBPnope")
    with pytest.raises(SourceUnavailable, match=r"broken\.webp"):
        load_bitmap(bad)


def test_frame_centres_content_at_the_same_fill():
    img = Image.new("RGBA", (300, 100), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (10, 10, 110, 60))  # a 100×50 block, off centre
    out = frame(img, 64)
    assert (out.mode, out.size) == ("RGBA", (64, 64))
    x0, y0, x1, y1 = out.getchannel("A").getbbox()
    assert x1 - x0 == round(FILL * 64)
    assert abs((x0 + x1) / 2 - 32) <= 1 and abs((y0 + y1) / 2 - 32) <= 1


def test_frame_refuses_an_empty_image():
    with pytest.raises(SourceUnavailable, match="empty"):
        frame(Image.new("RGBA", (10, 10)), 32)


def test_native_resolution_is_the_longer_side_of_the_content():
    img = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    img.paste((0, 0, 0, 255), (20, 30, 60, 50))
    assert native_resolution(img) == 40


def test_noto_glyphs_render_and_unjoinable_sequences_fail(noto_font):
    img = render_emoji_glyph(noto_font, "\U0001f44b\U0001f3fd")
    assert img.getchannel("A").getbbox() is not None
    with pytest.raises(SourceUnavailable, match="no single glyph"):
        render_emoji_glyph(noto_font, "\U0001f44b\U0001f4d5\u2764")
