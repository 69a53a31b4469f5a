"""The canvas typography is set on: text drawn at the largest size that fits its box (trying
line breaks), identically on the picture and on the glyph canvas (white on black) that
conditions the model, with each piece of text recorded as a ``Span``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from limner.typography.colours import RGB
from limner.typography.fonts import FONT_FEATURES, lining_figures


@dataclass
class Span:
    """One piece of text in a scene: what it says, where, and how."""

    text: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the inked text, in pixels
    role: str  # "title" | "subtitle" | "label" | "body"
    font: str
    colour: RGB
    size: int = 0  # font size in pixels
    behind: tuple[RGB, ...] = ()  # the colours directly behind the text (for contrast checks)
    allotted: tuple[int, int, int, int] = (0, 0, 0, 0)  # the box the layout gave the text


@dataclass
class Scene:
    kind: str
    image: Image.Image  # RGB
    glyph: Image.Image  # L: the spans' text in white on black, same place and size
    spans: list[Span] = field(default_factory=list)
    caption: str = ""


@dataclass
class Spec:
    """What a prompt fixes about a scene; anything left None is drawn at random (seeded)."""

    texts: list[str] | None = None  # in reading order; None = random words (corpus)
    title: str | None = None  # charts, infographics, flowcharts: a heading above the items
    style: str | None = None  # a key of fonts.STYLES
    background: RGB | None = None
    fill: RGB | None = None  # the sign board, tag, badge disc, step boxes, bars


def wrap_options(text: str, max_lines: int = 4) -> list[list[str]]:
    """Ways to break ``text`` into 1..max_lines balanced lines (explicit newlines are kept)."""
    if "\n" in text:
        return [[ln.strip() for ln in text.split("\n") if ln.strip()]]
    words = text.split()
    options = [[text]]
    for k in range(2, min(max_lines, len(words)) + 1):
        target = len(text) / k
        lines: list[str] = []
        cur: list[str] = []
        for w in words:
            if cur and len(" ".join([*cur, w])) > target * 1.15 and len(lines) < k - 1:
                lines.append(" ".join(cur))
                cur = []
            cur.append(w)
        lines.append(" ".join(cur))
        if len(lines) == k:
            options.append(lines)
    return options


class Canvas:
    """Draws text on the image and, identically, on the glyph canvas."""

    def __init__(self, size: int, background: Image.Image, fonts: dict[str, list[Path]]):
        self.size = size
        self.image = background
        self.glyph = Image.new("L", (size, size), 0)
        self.draw = ImageDraw.Draw(self.image)
        self.gdraw = ImageDraw.Draw(self.glyph)
        self.fonts = fonts
        self.spans: list[Span] = []

    def font_path(self, style: str, text: str = "") -> Path:
        """The style's first font; for text with figures, its first font with lining ones."""
        paths = self.fonts.get(style) or self.fonts.get("sans") or next(iter(self.fonts.values()))
        if any(c.isdigit() for c in text):
            return next((p for p in paths if lining_figures(p)), paths[0])
        return paths[0]

    def fit_font(
        self, style: str, text: str, max_w: int, max_h: int, max_size: int | None = None
    ) -> ImageFont.FreeTypeFont:
        """The largest size (≤ ``max_size``) of the style's font for ``text`` at which it fits."""
        path = self.font_path(style, text)
        lo, hi = 6, min(max(8, max_h * 2), max_size or 10**6)
        best = ImageFont.truetype(str(path), lo)
        while lo <= hi:
            mid = (lo + hi) // 2
            font = ImageFont.truetype(str(path), mid)
            x0, y0, x1, y1 = self.draw.multiline_textbbox(
                (0, 0), text, font=font, align="center", spacing=mid // 5, **FONT_FEATURES
            )
            if x1 - x0 <= max_w and y1 - y0 <= max_h:
                best, lo = font, mid + 1
            else:
                hi = mid - 1
        return best

    def common_size(self, texts: list[str], boxes: list[tuple[int, int, int, int]], style: str) -> int:
        """One size for sibling texts (bar labels, steps): the largest at which all of them fit."""
        sizes = []
        for text, (x0, y0, x1, y1) in zip(texts, boxes, strict=True):
            sizes.append(
                max(int(self.fit_font(style, "\n".join(lines), x1 - x0, y1 - y0).size) for lines in wrap_options(text))
            )
        return min(sizes)

    def text(
        self,
        text: str,
        box: tuple[int, int, int, int],
        style: str,
        colour: RGB,
        role: str,
        behind: tuple[RGB, ...] = (),
        wrap: bool = True,
        max_size: int | None = None,
    ) -> Span:
        """Draw ``text`` centred in ``box`` at the largest size that fits (trying line breaks);
        record its inked box."""
        x0, y0, x1, y1 = box
        best_font, best_text = None, text
        for lines in wrap_options(text) if wrap else [[text]]:
            candidate = "\n".join(lines)
            font = self.fit_font(style, candidate, x1 - x0, y1 - y0, max_size)
            if best_font is None or font.size > best_font.size:
                best_font, best_text = font, candidate
        assert best_font is not None
        # centre the inked box itself (font metrics would centre the line boxes instead)
        kw = {"font": best_font, "align": "center", "spacing": best_font.size // 5, **FONT_FEATURES}
        bx0, by0, bx1, by1 = self.draw.multiline_textbbox((0, 0), best_text, **kw)
        at = (round((x0 + x1 - bx0 - bx1) / 2), round((y0 + y1 - by0 - by1) / 2))
        self.draw.multiline_text(at, best_text, fill=colour, **kw)
        self.gdraw.multiline_text(at, best_text, fill=255, **kw)
        inked = self.draw.multiline_textbbox(at, best_text, **kw)
        span = Span(
            text,
            (int(inked[0]), int(inked[1]), int(inked[2]), int(inked[3])),
            role,
            Path(str(best_font.path)).name,
            colour,  # type: ignore[arg-type]
            int(best_font.size),
            behind,
            box,
        )
        self.spans.append(span)
        return span
