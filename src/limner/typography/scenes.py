"""Typography scenes and the layout engine: posters, signs, labels, badges, bar charts,
infographics and flowcharts drawn with real fonts.

One drawing path serves both uses. For the corpus, ``make_scene`` fills the layouts with random
words; at generation time, ``layout_scene`` fills them with the prompt's own text (``Spec``).
Either way every string is set at the largest size that fits its box (wrapping onto up to four
lines), in a colour with at least 4.5:1 contrast to what lies behind it, and drawn identically
on the glyph canvas (white on black) that conditions the model.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from limner.data.captions import article
from limner.typography.contrast import BLACK, MIN_CONTRAST, WHITE, contrast_ratio
from limner.typography.fonts import FONT_FEATURES, lining_figures

WORDS = [
    "sale",
    "open",
    "closed",
    "welcome",
    "hello",
    "coffee",
    "tea",
    "bakery",
    "books",
    "music",
    "dance",
    "party",
    "summer",
    "winter",
    "spring",
    "autumn",
    "fresh",
    "local",
    "garden",
    "market",
    "pizza",
    "burger",
    "sushi",
    "taco",
    "soup",
    "salad",
    "bread",
    "cake",
    "cookies",
    "donuts",
    "juice",
    "milk",
    "art",
    "design",
    "studio",
    "gallery",
    "photo",
    "cinema",
    "theatre",
    "concert",
    "festival",
    "jazz",
    "rock",
    "night",
    "day",
    "sunrise",
    "sunset",
    "beach",
    "ocean",
    "river",
    "forest",
    "mountain",
    "city",
    "street",
    "park",
    "station",
    "airport",
    "hotel",
    "cafe",
    "bar",
    "shop",
    "store",
    "mall",
    "sports",
    "football",
    "tennis",
    "yoga",
    "gym",
    "run",
    "swim",
    "bike",
    "travel",
    "adventure",
    "explore",
    "discover",
    "learn",
    "build",
    "ship",
    "plan",
    "launch",
    "idea",
    "start",
    "finish",
    "goal",
    "team",
    "work",
    "home",
    "family",
    "friends",
    "love",
    "peace",
    "hope",
    "dream",
    "believe",
    "smile",
    "happy",
    "lucky",
    "magic",
    "star",
    "moon",
    "sun",
    "rain",
    "snow",
    "wind",
    "fire",
    "water",
    "earth",
    "green",
    "blue",
    "red",
    "gold",
    "silver",
    "free",
    "new",
    "best",
    "top",
    "big",
    "small",
    "fast",
    "slow",
    "hot",
    "cold",
    "safe",
    "stop",
    "go",
    "exit",
    "enter",
    "push",
    "pull",
    "danger",
    "caution",
    "quiet",
    "please",
    "thanks",
    "sorry",
    "yes",
    "no",
    "today",
    "tomorrow",
    "now",
    "soon",
    "always",
    "never",
    "every",
    "all",
    "one",
    "two",
    "three",
    "north",
    "south",
    "east",
    "west",
    "left",
    "right",
    "up",
    "down",
    "in",
    "out",
    "on",
    "off",
    "science",
    "math",
    "code",
    "data",
    "cloud",
    "robot",
    "space",
    "rocket",
    "planet",
    "energy",
    "power",
    "solar",
    "wind",
    "electric",
    "future",
    "vintage",
    "retro",
    "classic",
    "modern",
    "simple",
    "bold",
    "kitchen",
    "menu",
    "special",
    "deal",
    "offer",
    "limited",
    "edition",
    "premium",
    "quality",
    "organic",
    "natural",
    "vegan",
    "healthy",
    "sweet",
    "spicy",
    "salty",
    "sour",
    "fruit",
    "apple",
    "banana",
    "cherry",
    "lemon",
    "orange",
    "grape",
    "berry",
    "mango",
    "peach",
    "melon",
    "cat",
    "dog",
    "bird",
    "fish",
    "horse",
    "lion",
    "tiger",
    "bear",
    "panda",
    "fox",
    "owl",
    "bee",
    "flower",
    "tree",
    "leaf",
    "rose",
    "tulip",
    "daisy",
    "monday",
    "friday",
    "weekend",
    "holiday",
    "birthday",
    "wedding",
    "graduation",
    "anniversary",
    "school",
    "class",
    "lesson",
    "exam",
    "library",
    "museum",
    "zoo",
    "farm",
    "bank",
    "office",
    "clinic",
    "pharmacy",
    "police",
    "fire",
    "rescue",
    "help",
    "info",
    "map",
    "guide",
]

PALETTE = [
    (214, 40, 40),
    (245, 140, 40),
    (250, 215, 60),
    (60, 170, 80),
    (0, 128, 128),
    (40, 90, 210),
    (20, 30, 80),
    (120, 60, 170),
    (240, 120, 170),
    (120, 80, 45),
    (12, 12, 14),
    (250, 243, 220),
    (255, 255, 255),
    (225, 225, 225),
    (60, 60, 64),
    (140, 200, 240),
    (190, 240, 205),
    (252, 205, 170),
]
COLOUR_NAMES = {
    (214, 40, 40): "red",
    (245, 140, 40): "orange",
    (250, 215, 60): "yellow",
    (60, 170, 80): "green",
    (0, 128, 128): "teal",
    (40, 90, 210): "blue",
    (20, 30, 80): "navy blue",
    (120, 60, 170): "purple",
    (240, 120, 170): "pink",
    (120, 80, 45): "brown",
    (12, 12, 14): "black",
    (250, 243, 220): "cream",
    (255, 255, 255): "white",
    (225, 225, 225): "light grey",
    (60, 60, 64): "dark grey",
    (140, 200, 240): "sky blue",
    (190, 240, 205): "mint green",
    (252, 205, 170): "peach",
}
STYLE_WORDS = {
    "sans": "clean sans-serif",
    "bold": "bold",
    "serif": "elegant serif",
    "serif-bold": "bold serif",
    "condensed": "tall condensed",
    "handwritten": "handwritten",
    "script": "retro script",
    "mono": "monospace",
}


RGB = tuple[int, int, int]


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
        lines, cur = [], []
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
                max(self.fit_font(style, "\n".join(lines), x1 - x0, y1 - y0).size for lines in wrap_options(text))
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
            tuple(int(v) for v in inked),
            role,
            Path(best_font.path).name,
            colour,  # type: ignore[arg-type]
            int(best_font.size),
            behind,
            box,
        )
        self.spans.append(span)
        return span


def _words(rng: random.Random, lo: int, hi: int, upper: bool = False) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))
    return text.upper() if upper else rng.choice([text, text.title(), text.capitalize()])


def ink_for(behind: tuple[RGB, ...], rng: random.Random | None = None) -> RGB:
    """A text colour readable (≥ 4.5:1) on every colour in ``behind``: sometimes a palette colour
    (with ``rng``), else black or white, whichever is more readable."""
    best = max((BLACK, WHITE), key=lambda c: min(contrast_ratio(c, b) for b in behind))
    if rng is not None and rng.random() < 0.4:
        ok = [c for c in PALETTE if all(contrast_ratio(c, b) >= MIN_CONTRAST for b in behind)]
        if ok:
            return rng.choice(ok)
    return best


def _fill(rng: random.Random, spec: Spec, bg: tuple[RGB, ...]) -> RGB:
    if spec.fill is not None:
        return spec.fill
    return rng.choice([p for p in PALETTE if all(contrast_ratio(p, b) > 1.5 for b in bg)] or PALETTE)


def _texts(spec: Spec, make) -> list[str]:
    return list(spec.texts) if spec.texts else make()


def poster(c: Canvas, rng: random.Random, bg: tuple[RGB, ...], style: str, spec: Spec) -> str:
    s = c.size
    texts = _texts(
        spec,
        lambda: [_words(rng, 1, 3, upper=rng.random() < 0.5)] + ([_words(rng, 1, 4)] if rng.random() < 0.7 else []),
    )
    ink = ink_for(bg, rng)
    title = c.text(texts[0], (s // 12, s // 10, s - s // 12, s // 2), style, ink, "title", bg)
    caption = f'a poster with the title "{title.text}"'
    subs = texts[1:]
    if subs:
        h = (s * 3 // 10) // len(subs)
        for i, sub in enumerate(subs):
            top = s * 3 // 5 + i * h
            c.text(sub, (s // 8, top, s - s // 8, top + min(h, s // 7)), "sans", ink, "subtitle", bg)
        caption += " and the subtitle " + " and ".join(f'"{t}"' for t in subs)
    return caption


def sign(c: Canvas, rng: random.Random, bg: tuple[RGB, ...], style: str, spec: Spec) -> str:
    s = c.size
    board = _fill(rng, spec, bg)
    m = s // 8
    c.draw.rounded_rectangle(
        (m, s // 4, s - m, s * 3 // 4),
        radius=s // 16,
        fill=board,
        outline=ink_for((board,)),
        width=max(2, s // 64),
    )
    ink = ink_for((board,), rng)
    lines = _texts(
        spec,
        lambda: [_words(rng, 1, 2, upper=True)] + ([_words(rng, 1, 2, upper=True)] if rng.random() < 0.4 else []),
    )
    h = (s // 2 - m) // len(lines)
    for i, line in enumerate(lines):
        top = s // 4 + m // 2 + i * h
        c.text(line, (m + m // 2, top, s - m - m // 2, top + h), style, ink, "title", (board,))
    return article(f'{COLOUR_NAMES.get(board, "coloured")} sign that says "{" ".join(lines)}"')


def label(c: Canvas, rng: random.Random, bg: tuple[RGB, ...], style: str, spec: Spec) -> str:
    s = c.size
    tag = _fill(rng, spec, bg)
    c.draw.polygon(
        [
            (s // 6, s * 3 // 8),
            (s * 3 // 4, s * 3 // 8),
            (s * 7 // 8, s // 2),
            (s * 3 // 4, s * 5 // 8),
            (s // 6, s * 5 // 8),
        ],
        fill=tag,
    )
    c.draw.ellipse((s * 3 // 4 - s // 40, s // 2 - s // 40, s * 3 // 4 + s // 40, s // 2 + s // 40), fill=bg[0])
    text = " ".join(_texts(spec, lambda: [_words(rng, 1, 2, upper=rng.random() < 0.5)]))
    c.text(
        text,
        (s // 6 + s // 24, s * 3 // 8 + s // 32, s * 3 // 4 - s // 16, s * 5 // 8 - s // 32),
        style,
        ink_for((tag,), rng),
        "label",
        (tag,),
    )
    return article(f'{COLOUR_NAMES.get(tag, "coloured")} price tag label with the word "{text}"')


def badge(c: Canvas, rng: random.Random, bg: tuple[RGB, ...], style: str, spec: Spec) -> str:
    s = c.size
    disc = _fill(rng, spec, bg)
    m = s // 8
    c.draw.ellipse((m, m, s - m, s - m), fill=disc, outline=ink_for((disc,)), width=max(2, s // 48))
    text = " ".join(_texts(spec, lambda: [_words(rng, 1, 2, upper=True)]))
    c.text(
        text,
        (m + s // 10, s * 3 // 8, s - m - s // 10, s * 5 // 8),
        style,
        ink_for((disc,), rng),
        "title",
        (disc,),
    )
    return f'a round {COLOUR_NAMES.get(disc, "coloured")} badge that says "{text}"'


def _heading(c: Canvas, rng: random.Random, bg: tuple[RGB, ...], style: str, text: str) -> Span:
    s = c.size
    return c.text(text, (s // 10, s // 20, s - s // 10, s // 5), style, ink_for(bg, rng), "title", bg)


def bar_chart(c: Canvas, rng: random.Random, bg: tuple[RGB, ...], style: str, spec: Spec) -> str:
    s = c.size
    ink = ink_for(bg, rng)
    if spec.texts:
        title_text, names = spec.title or "", list(spec.texts)
    else:
        title_text, names = (
            _words(rng, 1, 2).title(),
            [rng.choice(WORDS).title() for _ in range(rng.randint(2, 4))],
        )
    title = _heading(c, rng, bg, style, title_text) if title_text else None
    bar = spec.fill or rng.choice([p for p in PALETTE if all(contrast_ratio(p, b) > 2.0 for b in bg)] or [ink])
    n = len(names)
    slot = (s - s // 5) // n
    boxes = [
        (
            s // 10 + i * slot + slot // 12,
            s * 3 // 4 + s // 40,
            s // 10 + (i + 1) * slot - slot // 12,
            s - s // 20,
        )
        for i in range(n)
    ]
    size = c.common_size(names, boxes, "sans")
    if size < s // 20 and n > 1:  # labels would be too small to read under the bars: bars across
        _horizontal_bars(c, rng, bg, names, bar, ink, top=s // 4 if title else s // 8)
    else:
        for i, (name, box) in enumerate(zip(names, boxes, strict=True)):
            x0 = s // 10 + i * slot
            top = s // 4 + rng.randint(0, s // 3)
            c.draw.rectangle((x0 + slot // 6, top, x0 + slot - slot // 6, s * 3 // 4), fill=bar)
            c.text(name, box, "sans", ink, "label", bg, max_size=size)
    head = f'a bar chart titled "{title.text}"' if title else "a bar chart"
    return head + " with bars labelled " + ", ".join(f'"{n}"' for n in names)


def _horizontal_bars(
    c: Canvas, rng: random.Random, bg: tuple[RGB, ...], names: list[str], bar: RGB, ink: RGB, top: int
) -> None:
    """Bars running left to right, one row each, labels in a column on the left: long labels
    (weekdays, city names) get a readable size that a slot under a vertical bar cannot give."""
    s, n = c.size, len(names)
    row = (s - s // 16 - top) // n
    left, label_w = s // 20, s * 2 // 5
    boxes = [(left, top + i * row + row // 10, left + label_w, top + (i + 1) * row - row // 10) for i in range(n)]
    size = c.common_size(names, boxes, "sans")
    x0 = left + label_w + s // 40
    for i, (name, box) in enumerate(zip(names, boxes, strict=True)):
        length = rng.randint(s // 10, s - s // 20 - x0)
        c.draw.rectangle((x0, top + i * row + row // 5, x0 + length, top + (i + 1) * row - row // 5), fill=bar)
        c.text(name, box, "sans", ink, "label", bg, max_size=size)


def infographic(c: Canvas, rng: random.Random, bg: tuple[RGB, ...], style: str, spec: Spec) -> str:
    s = c.size
    steps = list(spec.texts) if spec.texts else [rng.choice(WORDS).title() for _ in range(rng.randint(2, 3))]
    top = s // 16
    if spec.title:
        _heading(c, rng, bg, style, spec.title)
        top = s // 4
    box_colour = _fill(rng, spec, bg)
    n = len(steps)
    h = (s - s // 16 - top) // n
    size = c.common_size(
        steps,
        [(s // 5, top + i * h + h // 5, s - s // 6, top + i * h + h - h // 5) for i in range(n)],
        style,
    )
    for i, step in enumerate(steps):
        y0 = top + i * h
        c.draw.rounded_rectangle(
            (s // 12, y0 + h // 10, s - s // 12, y0 + h - h // 10), radius=s // 24, fill=box_colour
        )
        c.text(
            step,
            (s // 5, y0 + h // 5, s - s // 6, y0 + h - h // 5),
            style,
            ink_for((box_colour,), rng),
            "label",
            (box_colour,),
            max_size=size,
        )
    head = f'an infographic titled "{spec.title}" with' if spec.title else "an infographic with"
    return f"{head} {n} steps: " + ", ".join(steps)


def flowchart(c: Canvas, rng: random.Random, bg: tuple[RGB, ...], style: str, spec: Spec) -> str:
    s = c.size
    nodes = list(spec.texts) if spec.texts else [rng.choice(WORDS).title() for _ in range(rng.randint(2, 3))]
    top = s // 16
    if spec.title:
        _heading(c, rng, bg, style, spec.title)
        top = s // 4
    fill = _fill(rng, spec, bg)
    line = ink_for(bg)
    n = len(nodes)
    pitch = (s - s // 16 - top) // n
    h = pitch // 2 + pitch // 8
    for i, node in enumerate(nodes):
        y0 = top + i * pitch
        c.draw.rectangle((s // 6, y0, s - s // 6, y0 + h), fill=fill, outline=line, width=2)
        c.text(
            node,
            (s // 6 + s // 20, y0 + h // 8, s - s // 6 - s // 20, y0 + h - h // 8),
            style,
            ink_for((fill,), rng),
            "label",
            (fill,),
        )
        if i < n - 1:
            ya, yb = y0 + h, y0 + pitch
            c.draw.line((s // 2, ya, s // 2, yb - 6), fill=line, width=3)
            c.draw.polygon([(s // 2 - 7, yb - 9), (s // 2 + 7, yb - 9), (s // 2, yb)], fill=line)
    return "a flowchart from " + " to ".join(f'"{n}"' for n in nodes)


SCENES: dict[str, Callable[[Canvas, random.Random, tuple[RGB, ...], str, Spec], str]] = {
    "poster": poster,
    "sign": sign,
    "label": label,
    "badge": badge,
    "bar chart": bar_chart,
    "infographic": infographic,
    "flowchart": flowchart,
}


def _background(rng: random.Random, size: int, colour: RGB | None = None) -> tuple[Image.Image, tuple[RGB, ...], str]:
    """A flat or (30 %) vertical two-colour gradient background; returns the colours it spans."""
    colour = colour or rng.choice(PALETTE)
    if rng.random() < 0.3:
        # the second colour stays close to the first, and black or white must read on both ends
        other = rng.choice(
            [
                c
                for c in PALETTE
                if c != colour
                and contrast_ratio(c, colour) < 1.8
                and max(min(contrast_ratio(t, c), contrast_ratio(t, colour)) for t in (BLACK, WHITE)) >= MIN_CONTRAST
            ]
            or [colour]
        )
        img = Image.new("RGB", (size, size), colour)
        d = ImageDraw.Draw(img)
        for y in range(size):
            w = y / max(size - 1, 1)
            d.line(
                [(0, y), (size, y)],
                fill=tuple(round(a * (1 - w) + b * w) for a, b in zip(colour, other, strict=True)),
            )
        words = f"{COLOUR_NAMES.get(colour, 'coloured')} to {COLOUR_NAMES.get(other, 'coloured')} gradient background"
        return img, (colour, other), article(words)
    return (
        Image.new("RGB", (size, size), colour),
        (colour,),
        article(f"{COLOUR_NAMES.get(colour, 'coloured')} background"),
    )


def layout_scene(kind: str, spec: Spec, rng: random.Random, size: int, fonts: dict[str, list[Path]]) -> Scene:
    """Lay out and draw one scene; the caption quotes every string the image spells."""
    if kind not in SCENES:
        raise ValueError(f"unknown scene kind {kind!r}")
    background, colours, bg_words = _background(rng, size, spec.background)
    canvas = Canvas(size, background, fonts)
    style = spec.style if spec.style in fonts else rng.choice(sorted(fonts))
    caption = SCENES[kind](canvas, rng, colours, style, spec)
    caption = f"{caption}, {STYLE_WORDS.get(style, style)} lettering, on {bg_words}"
    return Scene(kind, canvas.image, canvas.glyph, canvas.spans, caption)


def make_scene(rng: random.Random, size: int, fonts: dict[str, list[Path]], kind: str | None = None) -> Scene:
    """One random scene for the corpus."""
    return layout_scene(kind or rng.choice(list(SCENES)), Spec(), rng, size, fonts)
