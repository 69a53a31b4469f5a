"""Does the drawn object have the colour the prompt asks for?

The measurable preference of issue 21's simulated voters (bench/preference.py): "a teal kite"
should be drawn teal. The subject is what stands off the fitted background (the skin-tone
reader's :func:`limner.eval.tone.foreground`); each of its pixels is named by the colour family
the corpus's captions were written with (:func:`limner.data.colors.colour_family`), so the
reader and the training captions agree on where orange ends and red begins. An image reads as
the asked colour when that family is the commonest chromatic one on the subject and covers at
least a fifth of it: black outlines and white highlights may share the object, but a grey shoe
asked to be yellow is not yellow.
"""

from __future__ import annotations

import re

import numpy as np
from PIL import Image

from limner.data.colors import SYNONYMS, colour_family
from limner.eval.tone import as_rgb64, foreground

# the colours a prompt may ask for (brown is left out: at 64 px it is a shaded orange, and is read as one)
ASKABLE = ("red", "orange", "yellow", "green", "teal", "blue", "purple", "pink")
ACHROMATIC = ("black", "grey", "white")
MIN_SHARE = 0.2  # of the subject's pixels, for the asked colour to count
MIN_SUBJECT = 24  # subject pixels (of 64²) below which the whole image is read

_FAMILY = {word: family for family in ASKABLE for word in SYNONYMS[family]}
_WORDS = re.compile(r"\b(" + "|".join(sorted(_FAMILY, key=len, reverse=True)) + r")\b", re.I)
_BACKGROUND = re.compile(  # "on a … background (from … to …)", no other preposition inside: "with red stripes on a …"
    r"\b(?:on|against|over|with)\b(?:(?!\b(?:on|against|over|with)\b)[^,])*?\bbackground\b(?:\s+from\b[^,]*)?", re.I
)


def asked_colour(prompt: str) -> str | None:
    """The colour family of the first colour word the prompt gives its subject (a colour word
    about the background does not count): "a crimson kite on a blue background" → "red"."""
    found = _WORDS.search(_BACKGROUND.sub(" ", prompt))
    return _FAMILY[found.group(1).lower()] if found else None


def subject_colours(image: Image.Image | np.ndarray) -> dict[str, float]:
    """Share of the subject's pixels in each colour family, at 64 px (the whole image when
    hardly anything stands off the background); brown counts as orange."""
    rgb = as_rgb64(image)
    mask = foreground(rgb)
    if mask.sum() < MIN_SUBJECT:
        mask = np.ones(mask.shape, dtype=bool)
    names = colour_family(rgb[mask]).astype(str)
    names[names == "brown"] = "orange"  # brown is not askable: a shaded orange is still orange
    values, counts = np.unique(names, return_counts=True)
    return {str(v): float(c) / float(counts.sum()) for v, c in zip(values, counts, strict=True)}


def reads_as(image: Image.Image | np.ndarray, colour: str) -> bool:
    """Whether ``colour`` is the commonest chromatic family on the subject, on at least
    :data:`MIN_SHARE` of it."""
    shares = subject_colours(image)
    chromatic = {k: v for k, v in shares.items() if k not in ACHROMATIC}
    return bool(chromatic) and max(chromatic, key=lambda k: chromatic[k]) == colour and shares[colour] >= MIN_SHARE
