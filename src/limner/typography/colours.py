"""The one table of named colours: what captions call them, what scenes paint with, what a
prompt may ask for ("on a navy blue background"). Lists below pick from it by name, in an order
that seeded corpus builds depend on."""

from __future__ import annotations

RGB = tuple[int, int, int]

NAMED: dict[str, RGB] = {
    "red": (214, 40, 40),
    "orange": (245, 140, 40),
    "yellow": (250, 215, 60),
    "green": (60, 170, 80),
    "dark green": (25, 80, 45),
    "mint green": (190, 240, 205),
    "teal": (0, 128, 128),
    "blue": (40, 90, 210),
    "navy blue": (20, 30, 80),
    "sky blue": (140, 200, 240),
    "pale blue": (215, 232, 250),
    "purple": (120, 60, 170),
    "lavender": (220, 205, 245),
    "pink": (240, 120, 170),
    "pale pink": (250, 214, 222),
    "peach": (252, 205, 170),
    "brown": (120, 80, 45),
    "beige": (230, 215, 185),
    "cream": (250, 243, 220),
    "black": (12, 12, 14),
    "white": (255, 255, 255),
    "light grey": (225, 225, 225),
    "dark grey": (60, 60, 64),
}
# Other words a prompt may use for a named colour.
ALIASES = {
    "grey": "light grey",
    "gray": "light grey",
    "light gray": "light grey",
    "navy": "navy blue",
    "dark gray": "dark grey",
}

# What typography scenes paint boards, bars and text with.
PALETTE_NAMES = (
    "red",
    "orange",
    "yellow",
    "green",
    "teal",
    "blue",
    "navy blue",
    "purple",
    "pink",
    "brown",
    "black",
    "cream",
    "white",
    "light grey",
    "dark grey",
    "sky blue",
    "mint green",
    "peach",
)
PALETTE: list[RGB] = [NAMED[n] for n in PALETTE_NAMES]
COLOUR_NAMES: dict[RGB, str] = {NAMED[n]: n for n in PALETTE_NAMES}  # a palette colour as captions say it

# What transparent corpus images are composited onto (data.colors).
BACKGROUND_NAMES = (
    "light grey",
    "dark grey",
    "black",
    "red",
    "pale pink",
    "pink",
    "orange",
    "peach",
    "yellow",
    "cream",
    "green",
    "mint green",
    "dark green",
    "teal",
    "sky blue",
    "pale blue",
    "blue",
    "navy blue",
    "purple",
    "lavender",
    "brown",
    "beige",
)


def by_name(name: str) -> RGB | None:
    """A colour a prompt names (any case, aliases included), or None."""
    name = name.strip().lower()
    return NAMED.get(ALIASES.get(name, name))
