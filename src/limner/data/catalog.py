"""List what each fetched source holds: one ``Item`` per image, with what captions need to know.

Listing reads only file names and metadata files; rasterising happens later, in ``build``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from limner.data.emoji import (
    GROUPS,
    TONE_NAMES,
    EmojiIndex,
    base_hex,
    hex_to_text,
    normalize_hex,
    skin_tones_of,
)
from limner.data.sources import EMOJIBASE, SOURCES, package_dir


@dataclass
class Item:
    source: str
    original_id: str  # file name or code points, as the source names it
    kind: str  # "svg" | "bitmap" | "glyph"
    path: str  # file to read (the font file for glyphs)
    name: str
    text: str = ""  # the emoji to draw, for glyphs
    tags: list[str] = field(default_factory=list)
    group: str = ""
    skin_tones: list[str] = field(default_factory=list)
    family: str = ""  # variants that share a family always land in the same split


# The Fluent 3D renders as packaged (npm @lobehub/fluent-emoji-3d) draw medium skin in the files
# coded medium-light (U+1F3FC) and medium-light skin in those coded medium (U+1F3FD) — in every
# family, hands and people alike (side by side in docs/evaluation.md). Their labels, and so their
# captions, name the tone drawn; the code points stay in ``original_id``.
DRAWN_AS = {"fluent-3d": {"medium-light": "medium", "medium": "medium-light"}}


def tones_drawn(source: str, code: str) -> list[str]:
    """The skin tones a ``source`` file coded ``code`` (code points, e.g. ``1f44b-1f3fc``) draws."""
    swap = DRAWN_AS.get(source, {})
    return [swap.get(t, t) for t in skin_tones_of(code)]


def _fluent_3d(root: Path, index: EmojiIndex) -> Iterator[Item]:
    for f in sorted(root.glob("**/assets/*.webp")):
        info = index.lookup(f.stem)
        if info is None:
            continue
        yield Item(
            "fluent-3d",
            f.name,
            "bitmap",
            str(f),
            info.name,
            tags=info.tags,
            group=info.group,
            skin_tones=tones_drawn("fluent-3d", f.stem),
            family=base_hex(f.stem),
        )


_TONE_SUFFIXES = sorted((t for t in TONE_NAMES), key=len, reverse=True)


def _fluent_svg(style_dir: str, source: str) -> Callable[[Path, EmojiIndex], Iterator[Item]]:
    def items(root: Path, index: EmojiIndex) -> Iterator[Item]:
        files = sorted(root.glob(f"**/icons/{style_dir}/*.svg"))
        stems = {f.stem for f in files}
        for f in files:
            base, tones = f.stem, []
            for tone in [*_TONE_SUFFIXES, "default"]:
                if f.stem.endswith("-" + tone) and f.stem[: -len(tone) - 1] + "-default" in stems:
                    base = f.stem[: -len(tone) - 1]
                    tones = [] if tone == "default" else [tone]
                    break
            info = index.by_slug.get(base)
            name = info.name if info else base.replace("-", " ")
            yield Item(
                source,
                f.name,
                "svg",
                str(f),
                name,
                tags=info.tags if info else [],
                group=info.group if info else "",
                skin_tones=tones,
                family=base,
            )

    return items


def _openmoji(root: Path, index: EmojiIndex) -> Iterator[Item]:
    data = next(iter(sorted(root.glob("**/data/openmoji.json"))), None)
    if data is None:
        return
    svg_dir = data.parent.parent / "color" / "svg"
    for e in json.loads(data.read_text()):
        f = svg_dir / f"{e['hexcode']}.svg"
        tags = [t.strip() for t in (e.get("tags", "") + "," + e.get("openmoji_tags", "")).split(",")]
        name = e["annotation"].split(": ")[0] if "skin tone" in e["annotation"] else e["annotation"]
        yield Item(
            "openmoji",
            f.name,
            "svg",
            str(f),
            name.replace(": ", ", "),
            tags=list(dict.fromkeys(t for t in tags if t)),  # tags and openmoji_tags overlap
            group=GROUPS.get(e.get("group", ""), ""),
            skin_tones=skin_tones_of(e["hexcode"]),
            family=base_hex(e["hexcode"]),
        )


def _noto(root: Path, index: EmojiIndex) -> Iterator[Item]:
    font = next(iter(sorted(root.glob("**/NotoColorEmoji*.ttf"))), None)
    if font is None:
        return
    for code, info in sorted(index.by_hex.items()):
        yield Item(
            "noto",
            code,
            "glyph",
            str(font),
            info.name,
            text=hex_to_text(code),
            tags=info.tags,
            group=info.group,
            skin_tones=skin_tones_of(code),
            family=base_hex(code),
        )


_TITLE = re.compile(r"<dc:title>\s*([^<]*?)\s*</dc:title>", re.S)
_SUBJECT = re.compile(r"<rdf:li>\s*([^<]*?)\s*</rdf:li>")


def openclipart_title(text: str, stem: str) -> tuple[str, list[str]]:
    """Name and keywords of an Openclipart drawing from its RDF metadata, else its file name."""
    head = text[:20000]
    titles = [t for t in _TITLE.findall(head) if t.strip()]
    tags = [t.strip().lower() for t in _SUBJECT.findall(head) if t.strip() and "http" not in t]
    title = titles[0] if titles else ""
    if not title or len(title) > 60 or re.search(r"\.(svg|png)$", title, re.I):
        # file names look like 'lightbulb_jon_phillips_02': keep the leading words only
        words = [w for w in re.split(r"[_\-\s]+", stem) if w.isalpha()]
        title = " ".join(words[:2])
    title = re.sub(r"[_\s]+", " ", title).strip().lower()
    return title, list(dict.fromkeys(tags))[:8]


def _openclipart(root: Path, index: EmojiIndex) -> Iterator[Item]:
    svg_root = next(iter(sorted(root.glob("**/share/openclipart/svg"))), None)
    if svg_root is None:
        return
    found = []
    for f in sorted(svg_root.glob("**/*.svg")):
        try:
            title, tags = openclipart_title(f.read_text(encoding="utf-8", errors="replace"), f.stem)
        except OSError:
            title, tags = "", []
        found.append((f, title, tags))
    # A title shared by many files names a collection ("various cliparts"), not the drawing.
    shared = Counter(t for _, t, _ in found)
    for f, title, tags in found:
        if not title or shared[title] >= 4:
            title = " ".join([w for w in re.split(r"[_\-\s]+", f.stem) if w.isalpha()][:2]).lower()
        category = f.parent.relative_to(svg_root).parts
        tags = tags + [c.replace("_", " ") for c in category]
        yield Item(
            "openclipart",
            str(f.relative_to(svg_root)),
            "svg",
            str(f),
            title or "drawing",
            tags=tags,
            group=category[0].replace("_", " ") if category else "",
            family=str(f.relative_to(svg_root)),
        )


LISTERS: dict[str, Callable[[Path, EmojiIndex], Iterator[Item]]] = {
    "fluent-3d": _fluent_3d,
    "fluent-color": _fluent_svg("modern", "fluent-color"),
    "fluent-flat": _fluent_svg("flat", "fluent-flat"),
    "fluent-high-contrast": _fluent_svg("high-contrast", "fluent-high-contrast"),
    "openmoji": _openmoji,
    "noto": _noto,
    "openclipart": _openclipart,
}


def list_items(sources_dir: Path, only: list[str] | None = None) -> tuple[list[Item], list[str]]:
    """Every item of every fetched source, and the names of sources that are missing."""
    sources_dir = Path(sources_dir)
    emojibase = package_dir(sources_dir, EMOJIBASE)
    index = EmojiIndex.load(emojibase if emojibase.exists() else None)
    items: list[Item] = []
    missing: list[str] = []
    for name, lister in LISTERS.items():
        if only and name not in only:
            continue
        root = package_dir(sources_dir, SOURCES[name].package)
        if not root.exists():
            missing.append(name)
            continue
        items.extend(lister(root, index))
    return items, missing


def family_key(item: Item) -> str:
    return f"{item.source}:{normalize_hex(item.family) if item.kind != 'svg' else item.family}"
