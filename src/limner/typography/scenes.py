"""Procedural typography scenes for the corpus: posters, signs, labels, badges, charts, infographics
and diagrams, drawn with real fonts. Each scene records its exact strings and their boxes and comes
with a glyph canvas (the same text, white on black), so the model learns to paint what a glyph
canvas asks for.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from limner.data.captions import article
from limner.typography.contrast import contrast_ratio, readable_on

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


@dataclass
class Span:
    """One piece of text in a scene: what it says, where, and how."""

    text: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the inked text, in pixels
    role: str  # "title" | "subtitle" | "label" | "body"
    font: str
    colour: tuple[int, int, int]


@dataclass
class Scene:
    kind: str
    image: Image.Image  # RGB
    glyph: Image.Image  # L: the spans' text in white on black, same place and size
    spans: list[Span] = field(default_factory=list)
    caption: str = ""


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

    def fit_font(self, style: str, text: str, max_w: int, max_h: int) -> ImageFont.FreeTypeFont:
        """The largest size of the style's first font at which ``text`` fits in max_w × max_h."""
        paths = self.fonts.get(style) or self.fonts.get("sans") or next(iter(self.fonts.values()))
        path = paths[0]
        lo, hi = 6, max(8, max_h * 2)
        best = ImageFont.truetype(str(path), lo)
        while lo <= hi:
            mid = (lo + hi) // 2
            font = ImageFont.truetype(str(path), mid)
            x0, y0, x1, y1 = font.getbbox(text)
            if x1 - x0 <= max_w and y1 - y0 <= max_h:
                best, lo = font, mid + 1
            else:
                hi = mid - 1
        return best

    def text(
        self,
        text: str,
        box: tuple[int, int, int, int],
        style: str,
        colour: tuple[int, int, int],
        role: str,
    ) -> Span:
        """Draw ``text`` centred in ``box`` at the largest size that fits; record its inked box."""
        x0, y0, x1, y1 = box
        font = self.fit_font(style, text, x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        self.draw.text((cx, cy), text, font=font, fill=colour, anchor="mm")
        self.gdraw.text((cx, cy), text, font=font, fill=255, anchor="mm")
        inked = self.draw.textbbox((cx, cy), text, font=font, anchor="mm")
        span = Span(text, tuple(int(v) for v in inked), role, Path(font.path).name, colour)  # type: ignore[arg-type]
        self.spans.append(span)
        return span


def _words(rng: random.Random, lo: int, hi: int, upper: bool = False) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))
    return text.upper() if upper else rng.choice([text, text.title(), text.capitalize()])


def _background(rng: random.Random, size: int) -> tuple[Image.Image, tuple[int, int, int], str]:
    colour = rng.choice(PALETTE)
    if rng.random() < 0.3:
        other = rng.choice(
            [c for c in PALETTE if c != colour and contrast_ratio(c, colour) < 1.8] or [colour]
        )
        img = Image.new("RGB", (size, size), colour)
        d = ImageDraw.Draw(img)
        for y in range(size):
            w = y / max(size - 1, 1)
            d.line(
                [(0, y), (size, y)],
                fill=tuple(round(a * (1 - w) + b * w) for a, b in zip(colour, other, strict=True)),
            )
        return (
            img,
            colour,
            article(f"{COLOUR_NAMES[colour]} to {COLOUR_NAMES[other]} gradient background"),
        )
    return (
        Image.new("RGB", (size, size), colour),
        colour,
        article(f"{COLOUR_NAMES[colour]} background"),
    )


def _style(rng: random.Random, fonts: dict[str, list[Path]]) -> str:
    return rng.choice(sorted(fonts))


def poster(c: Canvas, rng: random.Random, bg: tuple[int, int, int], style: str) -> str:
    s = c.size
    ink = readable_on(bg, rng)
    title = c.text(
        _words(rng, 1, 3, upper=rng.random() < 0.5),
        (s // 12, s // 10, s - s // 12, s // 2),
        style,
        ink,
        "title",
    )
    caption = f'a poster with the title "{title.text}"'
    if rng.random() < 0.7:
        sub = c.text(
            _words(rng, 1, 4),
            (s // 8, s * 3 // 5, s - s // 8, s * 3 // 5 + s // 7),
            "sans",
            ink,
            "subtitle",
        )
        caption += f' and the subtitle "{sub.text}"'
    return caption


def sign(c: Canvas, rng: random.Random, bg: tuple[int, int, int], style: str) -> str:
    s = c.size
    board = rng.choice([p for p in PALETTE if contrast_ratio(p, bg) > 1.5] or PALETTE)
    m = s // 8
    c.draw.rounded_rectangle(
        (m, s // 4, s - m, s * 3 // 4),
        radius=s // 16,
        fill=board,
        outline=readable_on(board),
        width=max(2, s // 64),
    )
    ink = readable_on(board, rng)
    lines = [_words(rng, 1, 2, upper=True)] + (
        [_words(rng, 1, 2, upper=True)] if rng.random() < 0.4 else []
    )
    h = (s // 2 - 2 * m // 2) // len(lines)
    for i, line in enumerate(lines):
        top = s // 4 + m // 2 + i * h
        c.text(line, (m + m // 2, top, s - m - m // 2, top + h), style, ink, "title")
    return article(f'{COLOUR_NAMES[board]} sign that says "{" ".join(lines)}"')


def label(c: Canvas, rng: random.Random, bg: tuple[int, int, int], style: str) -> str:
    s = c.size
    tag = rng.choice([p for p in PALETTE if contrast_ratio(p, bg) > 1.5] or PALETTE)
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
    c.draw.ellipse(
        (s * 3 // 4 - s // 40, s // 2 - s // 40, s * 3 // 4 + s // 40, s // 2 + s // 40), fill=bg
    )
    text = _words(rng, 1, 2, upper=rng.random() < 0.5)
    c.text(
        text,
        (s // 6 + s // 24, s * 3 // 8 + s // 32, s * 3 // 4 - s // 16, s * 5 // 8 - s // 32),
        style,
        readable_on(tag, rng),
        "label",
    )
    return article(f'{COLOUR_NAMES[tag]} price tag label with the word "{text}"')


def badge(c: Canvas, rng: random.Random, bg: tuple[int, int, int], style: str) -> str:
    s = c.size
    disc = rng.choice([p for p in PALETTE if contrast_ratio(p, bg) > 1.5] or PALETTE)
    m = s // 8
    c.draw.ellipse(
        (m, m, s - m, s - m), fill=disc, outline=readable_on(disc), width=max(2, s // 48)
    )
    text = _words(rng, 1, 2, upper=True)
    c.text(
        text,
        (m + s // 10, s * 3 // 8, s - m - s // 10, s * 5 // 8),
        style,
        readable_on(disc, rng),
        "title",
    )
    return f'a round {COLOUR_NAMES[disc]} badge that says "{text}"'


def bar_chart(c: Canvas, rng: random.Random, bg: tuple[int, int, int], style: str) -> str:
    s = c.size
    ink = readable_on(bg, rng)
    title = c.text(
        _words(rng, 1, 2).title(), (s // 10, s // 20, s - s // 10, s // 5), style, ink, "title"
    )
    n = rng.randint(2, 4)
    names = [rng.choice(WORDS).title() for _ in range(n)]
    bar = rng.choice([p for p in PALETTE if contrast_ratio(p, bg) > 2.0] or [ink])
    slot = (s - s // 5) // n
    for i, name in enumerate(names):
        x0 = s // 10 + i * slot
        top = s // 4 + rng.randint(0, s // 3)
        c.draw.rectangle((x0 + slot // 6, top, x0 + slot - slot // 6, s * 3 // 4), fill=bar)
        c.text(name, (x0, s * 3 // 4 + s // 40, x0 + slot, s - s // 20), "sans", ink, "label")
    return f'a bar chart titled "{title.text}" with bars labelled ' + ", ".join(
        f'"{n}"' for n in names
    )


def infographic(c: Canvas, rng: random.Random, bg: tuple[int, int, int], style: str) -> str:
    s = c.size
    ink = readable_on(bg, rng)
    n = rng.randint(2, 3)
    steps = [rng.choice(WORDS).title() for _ in range(n)]
    box_colour = rng.choice([p for p in PALETTE if contrast_ratio(p, bg) > 1.5] or PALETTE)
    h = (s - s // 8) // n
    for i, step in enumerate(steps):
        y0 = s // 16 + i * h
        c.draw.rounded_rectangle(
            (s // 12, y0 + h // 10, s - s // 12, y0 + h - h // 10), radius=s // 24, fill=box_colour
        )
        c.text(
            step,
            (s // 5, y0 + h // 5, s - s // 6, y0 + h - h // 5),
            style,
            readable_on(box_colour, rng),
            "label",
        )
    del ink
    return f"an infographic with {n} steps: " + ", ".join(steps)


def flowchart(c: Canvas, rng: random.Random, bg: tuple[int, int, int], style: str) -> str:
    s = c.size
    n = rng.randint(2, 3)
    nodes = [rng.choice(WORDS).title() for _ in range(n)]
    fill = rng.choice([p for p in PALETTE if contrast_ratio(p, bg) > 1.5] or PALETTE)
    line = readable_on(bg)
    h = s // (2 * n)
    for i, node in enumerate(nodes):
        y0 = s // 16 + i * (s - s // 8) // n
        c.draw.rectangle((s // 6, y0, s - s // 6, y0 + h), fill=fill, outline=line, width=2)
        c.text(
            node,
            (s // 6 + s // 20, y0 + h // 8, s - s // 6 - s // 20, y0 + h - h // 8),
            style,
            readable_on(fill, rng),
            "label",
        )
        if i < n - 1:
            ya, yb = y0 + h, y0 + (s - s // 8) // n
            c.draw.line((s // 2, ya, s // 2, yb - 6), fill=line, width=3)
            c.draw.polygon([(s // 2 - 7, yb - 9), (s // 2 + 7, yb - 9), (s // 2, yb)], fill=line)
    return "a flowchart from " + " to ".join(f'"{n}"' for n in nodes)


SCENES: dict[str, Callable[[Canvas, random.Random, tuple[int, int, int], str], str]] = {
    "poster": poster,
    "sign": sign,
    "label": label,
    "badge": badge,
    "bar chart": bar_chart,
    "infographic": infographic,
    "flowchart": flowchart,
}


def make_scene(
    rng: random.Random, size: int, fonts: dict[str, list[Path]], kind: str | None = None
) -> Scene:
    """One random scene; the caption quotes every string the image spells."""
    kind = kind or rng.choice(list(SCENES))
    background, colour, bg_words = _background(rng, size)
    canvas = Canvas(size, background, fonts)
    style = _style(rng, fonts)
    caption = SCENES[kind](canvas, rng, colour, style)
    caption = f"{caption}, {STYLE_WORDS.get(style, style)} lettering, on {bg_words}"
    return Scene(kind, canvas.image, canvas.glyph, canvas.spans, caption)
