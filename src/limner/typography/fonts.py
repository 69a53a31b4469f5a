"""Openly licensed fonts by style, found in fetched Debian font packages or on the system."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont, features

# Lining figures where a font has both kinds: old-style "101" and "1" read as "IOI" and "I" on a
# sign, to people and to OCR alike. (Font features need libraqm, which Pillow's wheels bundle.)
FONT_FEATURES: dict = {"features": ["lnum"]} if features.check("raqm") else {}

# The Debian packages the fonts below come from (``limner data fetch`` fetches them into
# data/sources/deb/<package>; data.sources lists them for fetching and for the corpus's licences).
FONT_PACKAGES = (
    "fonts-dejavu-core",
    "fonts-dejavu-extra",
    "fonts-liberation",
    "fonts-open-sans",
    "fonts-roboto-unhinted",
    "fonts-inter",
    "fonts-comic-neue",
    "fonts-lobster",
    "fonts-ebgaramond",
    "fonts-bebas-neue",
    "fonts-dancingscript",
    "fonts-jetbrains-mono",
)
FONT_DIRS_VARIABLE = "LIMNER_FONT_DIRS"
CHECKOUT_SOURCES = Path(__file__).resolve().parents[3] / "data" / "sources"  # a checkout's fetched packages

# style → font file names, best first. All come from FONT_PACKAGES.
STYLES: dict[str, list[str]] = {
    "sans": [
        "Inter-Regular.otf",
        "DejaVuSans.ttf",
        "LiberationSans-Regular.ttf",
        "OpenSans-Regular.ttf",
        "Roboto-Regular.ttf",
    ],
    "bold": [
        "Inter-Bold.otf",
        "DejaVuSans-Bold.ttf",
        "LiberationSans-Bold.ttf",
        "OpenSans-Bold.ttf",
        "Roboto-Bold.ttf",
    ],
    "serif": ["EBGaramond12-Regular.otf", "LiberationSerif-Regular.ttf", "DejaVuSerif.ttf"],
    "serif-bold": ["EBGaramond12-Bold.otf", "LiberationSerif-Bold.ttf", "DejaVuSerif-Bold.ttf"],
    "condensed": [
        "BebasNeue-Regular.otf",
        "RobotoCondensed-Bold.ttf",
        "DejaVuSansCondensed-Bold.ttf",
    ],
    "handwritten": ["ComicNeue-Bold.otf", "ComicNeue-Regular.otf"],
    "script": ["lobster.otf", "DancingScript-Bold.otf"],
    "mono": [
        "JetBrainsMono-Bold.ttf",
        "JetBrainsMono-Regular.ttf",
        "DejaVuSansMono-Bold.ttf",
        "LiberationMono-Bold.ttf",
    ],
}

SYSTEM_DIRS = [Path("/usr/share/fonts"), Path("/usr/local/share/fonts")]


@lru_cache(maxsize=8)
def _index(dirs: tuple[Path, ...]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in dirs:
        if d.exists():
            for f in sorted(d.glob("**/*.[ot]tf")):
                found.setdefault(f.name, f)
    return found


def find_fonts(extra_dirs: list[Path] | None = None) -> dict[str, list[Path]]:
    """Fonts available for each style (styles with none are left out)."""
    index = _index(tuple([*(extra_dirs or []), *SYSTEM_DIRS]))
    out: dict[str, list[Path]] = {}
    for style, names in STYLES.items():
        paths = [index[n] for n in names if n in index]
        if paths:
            out[style] = paths
    return out


@lru_cache(maxsize=64)
def _cmap(path: Path) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    with TTFont(str(path), lazy=True) as font:
        return frozenset(font.getBestCmap() or {})


def missing_glyphs(text: str, paths: list[Path]) -> list[str]:
    """Characters of ``text`` (spaces aside) that none of the fonts can draw."""
    have = frozenset().union(*(_cmap(Path(p)) for p in paths)) if paths else frozenset()
    return list(dict.fromkeys(c for c in text if not c.isspace() and ord(c) not in have))


def covering(fonts: dict[str, list[Path]], text: str) -> dict[str, list[Path]]:
    """The styles whose first font draws every character of ``text``."""
    return {style: paths for style, paths in fonts.items() if not missing_glyphs(text, paths[:1])}


@lru_cache(maxsize=64)
def lining_figures(path: Path) -> bool:
    """Whether the font's figures (with ``FONT_FEATURES``) stand as tall as its capitals: the tops
    of "10" reach the cap height (old-style ones stop at the x-height)."""
    font = ImageFont.truetype(str(path), 100)
    digits = font.getbbox("10", **FONT_FEATURES)
    capitals = font.getbbox("H", **FONT_FEATURES)
    return digits[1] <= capitals[1] + 0.1 * (capitals[3] - capitals[1])


def font_dirs() -> list[Path]:
    """Folders searched for fonts besides the system's: ``$LIMNER_FONT_DIRS`` (separated by
    ``os.pathsep``) if set, else the fetched font packages of this checkout — found from this
    file's place, never from the working directory."""
    configured = os.environ.get(FONT_DIRS_VARIABLE, "")
    if configured:
        return [Path(d) for d in configured.split(os.pathsep) if d]
    return [d for d in (CHECKOUT_SOURCES / "deb" / name for name in FONT_PACKAGES) if d.is_dir()]


@lru_cache(maxsize=1)
def default_fonts() -> dict[str, list[Path]]:
    fonts = find_fonts(font_dirs())
    if not fonts:
        from limner.errors import InvalidRequest

        raise InvalidRequest("no fonts found for text in images: install fonts-dejavu-core (scripts/setup does)")
    return fonts
