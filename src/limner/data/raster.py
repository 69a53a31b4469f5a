"""Turn source files (SVG, webp/png, emoji font glyphs) into framed RGBA squares.

Every image is cropped to its visible content and centred with the same margin, so that all
sources share one framing whatever their page size or padding.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from limner.errors import SourceUnavailable

FILL = 0.86  # share of the canvas the content's longer side covers

_UNITS = {"mm": 3.7795, "cm": 37.795, "in": 96.0, "pt": 4 / 3, "pc": 16.0, "px": 1.0, "": 1.0}
_ROOT = re.compile(r"<svg\b[^>]*>", re.S)
_DIM = re.compile(r'\s(width|height)\s*=\s*"\s*([0-9.eE+-]+)\s*(mm|cm|in|pt|pc|px|%|)\s*"')


def _normalise_svg_root(svg: str) -> str:
    """Give the root element pixel sizes: resvg refuses 'mm'/'pt' units and '%' sizes."""
    m = _ROOT.search(svg)
    if m is None:
        raise SourceUnavailable("not an SVG document (no <svg> element)")
    tag = m.group(0)

    def px(d: re.Match) -> str:
        if d.group(3) == "%":
            return ""
        return f' {d.group(1)}="{float(d.group(2)) * _UNITS[d.group(3)]:.3f}"'

    new = _DIM.sub(px, tag)
    return svg[: m.start()] + new + svg[m.end() :]


def render_svg(path: Path, long_side: int = 512) -> Image.Image:
    """Rasterise an SVG with resvg; re-render larger when the drawing fills little of its page."""
    import resvg_py

    try:
        svg = _normalise_svg_root(Path(path).read_text(encoding="utf-8", errors="replace"))
        png = resvg_py.svg_to_bytes(svg_string=svg, width=long_side, skip_system_fonts=True)
        img = Image.open(io.BytesIO(bytes(png))).convert("RGBA")
        box = img.getchannel("A").getbbox()
        if box is not None:
            extent = max(box[2] - box[0], box[3] - box[1])
            if extent < 0.5 * long_side:
                wider = min(4096, int(long_side * 0.8 * long_side / max(extent, 1)))
                png = resvg_py.svg_to_bytes(svg_string=svg, width=wider, skip_system_fonts=True)
                img = Image.open(io.BytesIO(bytes(png))).convert("RGBA")
    except Exception as e:  # resvg raises plain exceptions for malformed files
        raise SourceUnavailable(f"cannot rasterise {path}: {e}") from e
    return img


def load_bitmap(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGBA")
    except Exception as e:
        raise SourceUnavailable(f"cannot read image {path}: {e}") from e


def render_emoji_glyph(font_path: Path, text: str) -> Image.Image:
    """Draw one emoji from a colour bitmap font (Noto Color Emoji's glyphs are 109 px)."""
    font = ImageFont.truetype(str(font_path), 109)
    img = Image.new("RGBA", (400, 160), (0, 0, 0, 0))
    ImageDraw.Draw(img).text((200, 80), text, font=font, embedded_color=True, anchor="mm")
    box = img.getchannel("A").getbbox()
    if box is None or box[2] - box[0] > 136:  # nothing drawn, or a sequence the font can't join
        raise SourceUnavailable(f"the font has no single glyph for {text.encode('unicode_escape')!r}")
    return img


def frame(rgba: Image.Image, size: int, fill: float = FILL) -> Image.Image:
    """Crop to visible content and centre it on a transparent ``size``² canvas."""
    alpha = rgba.getchannel("A").point(lambda a: 255 if a > 8 else 0)
    box = alpha.getbbox()
    if box is None:
        raise SourceUnavailable("image is empty (fully transparent)")
    content = rgba.crop(box)
    scale = fill * size / max(content.size)
    w, h = max(1, round(content.width * scale)), max(1, round(content.height * scale))
    content = content.resize((w, h), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    canvas.paste(content, ((size - w) // 2, (size - h) // 2))
    return canvas


def native_resolution(rgba: Image.Image) -> int:
    """Longer side of the visible content, in source pixels (tells low-resolution sources apart)."""
    box = rgba.getchannel("A").getbbox() or (0, 0, *rgba.size)
    return max(box[2] - box[0], box[3] - box[1])
