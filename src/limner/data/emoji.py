"""Emoji names, keywords, groups and skin tones, from emojibase-data and Python's unicodedata."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

# The five Fitzpatrick modifiers, in order from lightest to darkest.
SKIN_TONES: dict[str, str] = {
    "1f3fb": "light",
    "1f3fc": "medium-light",
    "1f3fd": "medium",
    "1f3fe": "medium-dark",
    "1f3ff": "dark",
}
TONE_NAMES = list(SKIN_TONES.values())

GROUPS = {
    "smileys-emotion": "smiley",
    "people-body": "person",
    "component": "symbol",
    "animals-nature": "nature",
    "food-drink": "food",
    "travel-places": "place",
    "activities": "activity",
    "objects": "object",
    "symbols": "symbol",
    "flags": "flag",
    "extras-openmoji": "object",
    "extras-unicode": "symbol",
}


def normalize_hex(code: str) -> str:
    """'1F44B-1F3FB', '1f44b_1f3fb' or '2716-FE0F' → '1f44b-1f3fb' / '2716' (no variation selectors)."""
    parts = [p for p in re.split(r"[-_ ]", code.lower()) if p and p != "fe0f"]
    return "-".join(parts)


def skin_tones_of(code: str) -> list[str]:
    """Skin tones named by the Fitzpatrick modifiers in a code-point sequence, in order."""
    return [SKIN_TONES[p] for p in normalize_hex(code).split("-") if p in SKIN_TONES]


def base_hex(code: str) -> str:
    """The sequence without its skin-tone modifiers: the key shared by all tone variants."""
    return "-".join(p for p in normalize_hex(code).split("-") if p not in SKIN_TONES)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def hex_to_text(code: str) -> str:
    return "".join(chr(int(p, 16)) for p in re.split(r"[-_ ]", code) if p)


@dataclass
class EmojiInfo:
    name: str  # without the skin tone: "waving hand"
    tags: list[str] = field(default_factory=list)
    group: str = "symbol"  # one of GROUPS' values
    subgroup: str = ""


class EmojiIndex:
    """Looks up an emoji by code points or by slug of its name."""

    def __init__(self, infos: dict[str, EmojiInfo]):
        self.by_hex = infos
        self.by_slug = {slug(i.name): i for i in infos.values()}

    @classmethod
    def load(cls, emojibase_dir: Path | None) -> EmojiIndex:
        """Read emojibase-data's English data; an empty index (unicodedata only) if absent."""
        infos: dict[str, EmojiInfo] = {}
        if emojibase_dir is None:
            return cls(infos)
        root = Path(emojibase_dir)
        data_file = next(iter(sorted(root.glob("**/en/data.json"))), None)
        groups_file = next(iter(sorted(root.glob("**/meta/groups.json"))), None)
        if data_file is None or groups_file is None:
            return cls(infos)
        meta = json.loads(groups_file.read_text())
        group_names, subgroup_names = meta["groups"], meta["subgroups"]
        for e in json.loads(data_file.read_text()):
            group = GROUPS.get(group_names.get(str(e.get("group")), ""), "symbol")
            info = EmojiInfo(
                name=_clean_label(e["label"]),
                tags=list(e.get("tags", [])),
                group=group,
                subgroup=subgroup_names.get(str(e.get("subgroup")), ""),
            )
            infos[normalize_hex(e["hexcode"])] = info
            for skin in e.get("skins", []) or []:
                infos[normalize_hex(skin["hexcode"])] = info
        return cls(infos)

    def lookup(self, code: str) -> EmojiInfo | None:
        key = normalize_hex(code)
        info = self.by_hex.get(key) or self.by_hex.get(base_hex(key))
        if info is not None:
            return info
        text = hex_to_text(base_hex(key))
        if len(text) == 1:  # a lone code point: unicodedata knows its name
            name = unicodedata.name(text, "")
            if name:
                return EmojiInfo(name=name.lower())
        return None


def _clean_label(label: str) -> str:
    """'waving hand: light skin tone' → 'waving hand'; 'flag: Japan' → 'flag of Japan'."""
    if label.startswith("flag: "):
        return "flag of " + label[len("flag: ") :]
    head, _, tail = label.partition(": ")
    if tail and "skin tone" in tail:
        return head
    return label.replace(": ", ", ")
