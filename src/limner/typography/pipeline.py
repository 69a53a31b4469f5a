"""Exact text for every backend: plan the text a prompt quotes, condition on it, then set it.

    prepared = prepare(prompt, seed, size)      # parse, lay out, render the glyph canvas
    ... the model generates, conditioned on prepared.glyph when it can ...
    image = finish(image, prepared)              # set the exact strings over what was painted

``finish`` keeps the model's look where it can: each string takes the colour the model painted
under its glyphs when that colour is readable (≥ 4.5:1) on the colour the model painted around
them; otherwise the more readable of black and white. The strings and their places come from
the layout, so what the prompt quotes is what the image spells.

Modes (``GenerationRequest.typography``): "auto" (glyph canvas + setting), "glyph" (glyph canvas
only: the model's own lettering), "off" (neither: the ablation).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from limner.errors import InvalidRequest
from limner.typography.canvas import Scene, Spec
from limner.typography.colours import ALIASES, COLOUR_NAMES, NAMED
from limner.typography.contrast import BLACK, MIN_CONTRAST, RGB, WHITE, contrast_ratio
from limner.typography.fonts import covering, default_fonts, missing_glyphs
from limner.typography.parse import Parsed, parse
from limner.typography.scenes import layout_scene

MODES = ("auto", "glyph", "off")
STYLE_CUES = [
    ("handwritten", r"hand[- ]?written|handwriting|hand[- ]?lettered|chalk|marker|scribbled"),
    ("script", r"\bscript\b|cursive|retro|vintage|neon|calligraph"),
    ("serif", r"\bserif\b|elegant|classic|book|old[- ]style"),
    ("condensed", r"condensed|\btall\b|headline|impact|narrow"),
    ("mono", r"mono(space)?|typewriter|terminal|\bcode\b|pixel"),
    ("bold", r"\bbold\b|\bheavy\b|\bblack\b letters|\bstrong\b"),
]
LEGIBLE = ["bold", "sans", "condensed"]  # the faces for prompts that name no style
NAMES_TO_RGB = {**{n: rgb for rgb, n in COLOUR_NAMES.items()}, **{a: NAMED[n] for a, n in ALIASES.items()}}


@dataclass
class Prepared:
    parsed: Parsed
    scene: Scene | None
    mode: str

    @property
    def glyph(self) -> Image.Image | None:
        return self.scene.glyph if self.scene is not None and self.mode in ("auto", "glyph") else None


def _rgb(v: np.ndarray) -> RGB:
    return (int(v[0]), int(v[1]), int(v[2]))


def style_of(prompt: str, kind: str) -> str | None:
    low = prompt.lower()
    for style, pattern in STYLE_CUES:
        if re.search(pattern, low):
            return style
    return None


def colours_of(prompt: str) -> tuple[tuple[int, int, int] | None, tuple[int, int, int] | None]:
    """(background, fill) named in the prompt: "on a red background", "a green sign"."""
    low = prompt.lower()
    names = sorted(NAMES_TO_RGB, key=len, reverse=True)
    alt = "|".join(re.escape(n) for n in names)
    bg = re.search(rf"\b({alt})\s+(?:background|backdrop)", low)
    fill = re.search(
        rf"\b({alt})\s+(?:sign|board|signboard|badge|button|label|tag|sticker|boxes|box|bars?)\b",
        low,
    )
    return (
        NAMES_TO_RGB[bg.group(1)] if bg else None,
        NAMES_TO_RGB[fill.group(1)] if fill else None,
    )


def check_drawable(spans: list[str], fonts: dict[str, list[Path]]) -> None:
    """Refuse, naming the characters, text that no installed font can draw."""
    paths = [p for ps in fonts.values() for p in ps]
    for text in spans:
        missing = missing_glyphs(text.replace("\n", ""), paths)
        if missing:
            shown = " ".join(f"{c!r} (U+{ord(c):04X})" for c in missing[:8])
            raise InvalidRequest(
                f"the text {text!r} has characters no installed font can draw: {shown}; "
                "Limner draws Latin, Greek and Cyrillic text",
                param="prompt",
            )


def check_request_text(prompt: str, mode: str) -> None:
    """Validate the typography mode and that every quoted character can be drawn (before work)."""
    if mode not in MODES:
        raise InvalidRequest(f"typography must be one of {', '.join(MODES)}", param="typography")
    if mode != "off":
        parsed = parse(prompt)
        if parsed.has_text:
            check_drawable(parsed.spans, default_fonts())


def prepare(
    prompt: str,
    seed: int,
    size: int,
    mode: str = "auto",
    fonts: dict[str, list[Path]] | None = None,
) -> Prepared:
    """Parse and lay out the prompt's text (same prompt and seed: same layout)."""
    if mode not in MODES:
        raise InvalidRequest(f"typography must be one of {', '.join(MODES)}", param="typography")
    parsed = parse(prompt)
    if not parsed.has_text or mode == "off":
        return Prepared(parsed, None, mode)
    fonts = fonts or default_fonts()
    check_drawable(parsed.spans, fonts)
    fonts = covering(fonts, "".join(parsed.spans)) or fonts  # only fonts that draw every character
    kind = parsed.kind or "poster"
    texts, title = list(parsed.spans), None
    if kind in ("infographic", "flowchart", "bar chart") and parsed.title is not None:
        title, texts = parsed.title, [t for t in texts if t != parsed.title] or texts
    bg, fill = colours_of(prompt)
    rng = random.Random(f"{seed}:{prompt}")
    # a style the prompt names; otherwise one of the plainly legible ones (script and handwriting
    # only when asked for: they are the hardest to read at 256 px)
    style = style_of(prompt, kind) or rng.choice([s for s in LEGIBLE if s in fonts] or sorted(fonts))
    spec = Spec(texts=texts, title=title, style=style, background=bg, fill=fill)
    scene = layout_scene(kind, spec, rng, size, fonts)
    return Prepared(parsed, scene, mode)


def finish(image: Image.Image, prepared: Prepared) -> Image.Image:
    """Set the planned strings onto the generated image (mode "auto"); otherwise return it as is."""
    if prepared.scene is None or prepared.mode != "auto":
        return image
    scene = prepared.scene
    img = image.convert("RGB")
    if img.size != scene.glyph.size:
        img = img.resize(scene.glyph.size, Image.Resampling.LANCZOS)
    arr = np.asarray(img).copy()
    alpha = np.asarray(scene.glyph, dtype=np.float32) / 255.0  # (S, S)
    near = scene.glyph.filter(ImageFilter.MaxFilter(9))  # where the model's own letters may spill
    ring = (np.asarray(scene.glyph.filter(ImageFilter.MaxFilter(17))) > 40) & (np.asarray(near) < 40)
    soft = np.asarray(near.filter(ImageFilter.GaussianBlur(2)), dtype=np.float32) / 255.0  # (S, S)
    plates = Image.new("L", scene.glyph.size, 0)
    for span in scene.spans:
        x0, y0, x1, y1 = span.box
        ImageDraw.Draw(plates).rounded_rectangle((x0 - 4, y0 - 4, x1 + 4, y1 + 4), radius=4, fill=255)
    plates = plates.filter(ImageFilter.GaussianBlur(2))
    plate = np.asarray(plates, dtype=np.float32) / 255.0  # (S, S)
    for span in scene.spans:
        x0, y0, x1, y1 = span.box
        x0, y0 = max(0, x0 - 10), max(0, y0 - 10)
        x1, y1 = min(arr.shape[1], x1 + 10), min(arr.shape[0], y1 + 10)
        a = alpha[y0:y1, x0:x1]
        if not (a > 0.5).any():
            continue
        region = arr[y0:y1, x0:x1].astype(np.float32)
        around = region[ring[y0:y1, x0:x1]]
        behind = _rgb(np.median(around, 0)) if len(around) else (span.behind or (WHITE,))[0]
        painted = _rgb(np.median(region[a > 0.5], 0))
        if contrast_ratio(painted, behind) >= MIN_CONTRAST:
            colour = painted
        elif contrast_ratio(span.colour, behind) >= MIN_CONTRAST:
            colour = span.colour
        else:
            colour = max((BLACK, WHITE), key=lambda c: contrast_ratio(c, behind))
        # wipe the model's approximate lettering, and whatever texture it painted on the text's
        # plate, back to the surrounding colour (a clean, feathered plate), then set the text
        wipe = np.maximum(soft[y0:y1, x0:x1], plate[y0:y1, x0:x1])[..., None]
        region = region * (1 - wipe) + np.array(behind, dtype=np.float32) * wipe
        ink = np.array(colour, dtype=np.float32)
        arr[y0:y1, x0:x1] = (region * (1 - a[..., None]) + ink * a[..., None]).round().clip(0, 255).astype(np.uint8)
    out = Image.fromarray(arr)
    return out if out.size == image.size else out.resize(image.size, Image.Resampling.LANCZOS)
