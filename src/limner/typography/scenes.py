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
from pathlib import Path

from PIL import Image, ImageDraw

from limner.typography.canvas import Canvas, Scene, Span, Spec
from limner.typography.colours import COLOUR_NAMES, PALETTE, RGB
from limner.typography.contrast import BLACK, MIN_CONTRAST, WHITE, contrast_ratio
from limner.typography.words import WORDS, article

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
