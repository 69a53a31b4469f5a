"""Colour names for captions and the backgrounds that transparent images are composited onto."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from limner.typography.colours import BACKGROUND_NAMES, NAMED

# Words a caption may use for each colour family; the first is the plain name.
SYNONYMS: dict[str, list[str]] = {
    "red": ["red", "crimson", "scarlet"],
    "orange": ["orange", "tangerine"],
    "yellow": ["yellow", "golden"],
    "green": ["green", "emerald"],
    "teal": ["teal", "turquoise"],
    "blue": ["blue", "azure"],
    "purple": ["purple", "violet"],
    "pink": ["pink", "rose"],
    "brown": ["brown", "chocolate"],
    "olive": ["olive"],
    "black": ["black"],
    "white": ["white"],
    "grey": ["grey", "gray", "silver"],
}

# Background colours: (name used in captions, RGB).
BACKGROUND_COLOURS: list[tuple[str, tuple[int, int, int]]] = [(n, NAMED[n]) for n in BACKGROUND_NAMES]
_COLOUR = dict(BACKGROUND_COLOURS)


@dataclass(frozen=True)
class Background:
    """What a transparent image is composited onto; ``describe()`` is what captions say."""

    kind: str  # "white" | "flat" | "gradient"
    colours: tuple[str, ...] = ()
    direction: str = "vertical"  # for gradients: "vertical" | "diagonal"

    def describe(self) -> str:
        if self.kind == "white":
            return "a white background"
        if self.kind == "flat":
            return f"a plain {self.colours[0]} background"
        return f"a soft gradient background from {self.colours[0]} to {self.colours[1]}"

    def render(self, size: int) -> Image.Image:
        if self.kind == "white":
            return Image.new("RGB", (size, size), (255, 255, 255))
        if self.kind == "flat":
            return Image.new("RGB", (size, size), _COLOUR[self.colours[0]])
        a = np.array(_COLOUR[self.colours[0]], np.float32)
        b = np.array(_COLOUR[self.colours[1]], np.float32)
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
        w = ys if self.direction == "vertical" else (xs + ys) / 2
        img = a * (1 - w[..., None]) + b * w[..., None]  # (S, S, 3)
        return Image.fromarray(img.round().astype(np.uint8))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Background:
        return cls(d["kind"], tuple(d.get("colours", ())), d.get("direction", "vertical"))


def random_background(rng: random.Random) -> Background:
    """White a third of the time, else a flat colour or a two-colour soft gradient."""
    r = rng.random()
    names = [n for n, _ in BACKGROUND_COLOURS]
    if r < 0.3:
        return Background("white")
    if r < 0.7:
        return Background("flat", (rng.choice(names),))
    a, b = rng.sample(names, 2)
    return Background("gradient", (a, b), rng.choice(["vertical", "diagonal"]))


def mean_colour(rgba: Image.Image) -> tuple[int, int, int]:
    """Mean RGB of the opaque pixels (grey for an empty image)."""
    small = np.asarray(rgba.convert("RGBA").resize((32, 32), Image.Resampling.BILINEAR)).astype(np.float32)
    w = small[..., 3:] / 255.0
    if w.sum() < 1:
        return (128, 128, 128)
    m = (small[..., :3] * w).sum((0, 1)) / w.sum()
    return (int(m[0]), int(m[1]), int(m[2]))


def background_for(rgba: Image.Image, rng: random.Random, min_contrast: float = 1.6) -> Background:
    """A random background the subject stands out from (black line icons never go on black)."""
    from limner.typography.contrast import contrast_ratio

    subject = mean_colour(rgba)
    bg = random_background(rng)
    for _ in range(8):
        if contrast_ratio(subject, mean_colour(bg.render(8).convert("RGBA"))) >= min_contrast:
            break
        bg = random_background(rng)
    return bg


def composite(rgba: Image.Image, background: Background) -> Image.Image:
    """Alpha-composite an RGBA image onto a background of the same size; returns RGB."""
    if rgba.mode != "RGBA":
        return rgba.convert("RGB")
    bg = background.render(rgba.width).convert("RGBA")
    if rgba.height != rgba.width:
        bg = bg.resize(rgba.size)
    return Image.alpha_composite(bg, rgba).convert("RGB")


def colour_family(rgb: np.ndarray) -> np.ndarray:
    """Name the colour family of each pixel (uint8 RGB, shape (..., 3)) by hue, saturation, value."""
    x = rgb.astype(np.float32) / 255.0
    mx, mn = x.max(-1), x.min(-1)
    v, delta = mx, mx - mn
    s = np.where(mx > 0, delta / np.maximum(mx, 1e-6), 0)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    safe = np.maximum(delta, 1e-6)
    h = np.where(mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4))
    h = h * 60.0  # degrees
    names = np.empty(rgb.shape[:-1], dtype=object)
    names[...] = "red"
    names[(h >= 15) & (h < 40)] = "orange"
    names[(h >= 15) & (h < 50) & (v < 0.6)] = "brown"
    names[(h >= 40) & (h < 70) & (v >= 0.6)] = "yellow"
    names[(h >= 50) & (h < 70) & (v < 0.6)] = "olive"  # dark yellow; not left at the default "red"
    names[(h >= 70) & (h < 165)] = "green"
    names[(h >= 165) & (h < 195)] = "teal"
    names[(h >= 195) & (h < 255)] = "blue"
    names[(h >= 255) & (h < 290)] = "purple"
    names[(h >= 290) & (h < 340)] = "pink"
    names[((h < 15) | (h >= 340)) & (s < 0.5) & (v > 0.8)] = "pink"
    grey = s < 0.18
    names[grey] = "grey"
    names[grey & (v > 0.88)] = "white"
    names[v < 0.2] = "black"
    return names


def dominant_colours(rgba: Image.Image, k: int = 2, min_share: float = 0.2) -> list[str]:
    """The ≤ k colour families that cover at least ``min_share`` of the opaque pixels."""
    small = np.asarray(rgba.convert("RGBA").resize((48, 48), Image.Resampling.BILINEAR))
    opaque = small[..., 3] > 128
    if opaque.sum() < 10:
        return []
    names = colour_family(small[..., :3][opaque])
    values, counts = np.unique(names.astype(str), return_counts=True)
    order = np.argsort(-counts)
    share = counts[order] / counts.sum()
    return [str(values[i]) for i, f in zip(order, share, strict=True) if f >= min_share][:k]
