"""WCAG 2 relative luminance and contrast ratio, and picking a readable text colour."""

from __future__ import annotations

import random

from limner.typography.colours import PALETTE, RGB

BLACK: RGB = (12, 12, 14)
WHITE: RGB = (255, 255, 255)
MIN_CONTRAST = 4.5  # WCAG AA for normal text


def luminance(rgb: RGB) -> float:
    """Relative luminance of an sRGB colour (WCAG 2.x definition)."""

    def lin(c: int) -> float:
        v = c / 255.0
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: RGB, b: RGB) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def readable_on(background: RGB, rng: random.Random | None = None, palette: list[RGB] | None = None) -> RGB:
    """A text colour with contrast ≥ 4.5:1 on ``background``: black or white, or with ``rng`` a
    random palette colour that also passes."""
    best = max((BLACK, WHITE), key=lambda c: contrast_ratio(c, background))
    if rng is None:
        return best
    ok = [c for c in (palette or PALETTE) if contrast_ratio(c, background) >= MIN_CONTRAST]
    return rng.choice(ok) if ok and rng.random() < 0.4 else best
