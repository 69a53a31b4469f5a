"""``limner data build``: rasterise, frame, caption and shard every source item, plus the
synthetic typography set, and write ``manifest.json``.

The output is a pure function of the sources and the build parameters: items are processed in
a fixed order, each with a random generator seeded by its key, and the split is a hash of the
item's family (so all skin-tone variants of one emoji land on the same side).
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from limner.data.captions import Subject, captions
from limner.data.catalog import Item, family_key, list_items
from limner.data.colors import background_for, dominant_colours
from limner.data.emoji import slug
from limner.data.raster import frame, load_bitmap, native_resolution, render_emoji_glyph, render_svg
from limner.data.shards import Record, ShardWriter
from limner.data.sources import FONT_LICENCES, FONTS, SOURCES, package_dir
from limner.errors import SourceUnavailable

VAL_PERCENT = 4
FORMAT_VERSION = 1


@dataclass(frozen=True)
class BuildParams:
    size: int = 256
    limit: int | None = None
    typography: int = 6000
    seed: int = 0
    workers: int = 2


def split_of(family: str, seed: int = 0) -> str:
    """'val' for about VAL_PERCENT % of families, else 'train'; stable across runs and machines."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{family}".encode()).digest()[:8], "big")
    return "val" if h % 100 < VAL_PERCENT else "train"


def record_key(item: Item) -> str:
    return f"{item.source}_{slug(item.original_id.rsplit('.', 1)[0])[:80]}"


def process_item(item: Item, size: int, seed: int = 0) -> Record:
    """Rasterise one item and caption it. Raises SourceUnavailable for unreadable files."""
    if item.kind == "svg":
        raw = render_svg(Path(item.path))
    elif item.kind == "bitmap":
        raw = load_bitmap(Path(item.path))
    else:
        raw = render_emoji_glyph(Path(item.path), item.text)
    native = native_resolution(raw)
    framed = frame(raw, size)
    key = record_key(item)
    rng = random.Random(f"{seed}:{key}")
    background = background_for(framed, rng)
    source = SOURCES[item.source]
    subject = Subject(item.name, source.style, item.tags, item.group, item.skin_tones, dominant_colours(framed))
    buf = io.BytesIO()
    framed.save(buf, format="WEBP", quality=92, method=4)
    meta = {
        "key": key,
        "source": item.source,
        "licence": source.licence,
        "original_id": item.original_id,
        "split": split_of(family_key(item), seed),
        "name": item.name,
        "style": source.style,
        "tags": item.tags,
        "group": item.group,
        "skin_tones": item.skin_tones,
        "colours": subject.colours,
        "background": background.to_dict(),
        "captions": captions(subject, background, rng),
        "native_resolution": native,
    }
    return Record(key, meta, {"webp": buf.getvalue()})


def _work(args: tuple[Item, int, int]) -> tuple[Item, Record | None, str | None]:
    item, size, seed = args
    try:
        return item, process_item(item, size, seed), None
    except SourceUnavailable as e:
        return item, None, str(e)
    except Exception as e:  # a corrupt file must not stop a 20-minute build: count it, go on
        return item, None, f"{type(e).__name__}: {e}"


def interleave(items: list[Item]) -> list[Item]:
    """Round-robin across sources, so that ``--limit N`` samples every source."""
    by_source: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        by_source[it.source].append(it)
    out: list[Item] = []
    queues = list(by_source.values())
    for i in range(max((len(q) for q in queues), default=0)):
        out.extend(q[i] for q in queues if i < len(q))
    return out


Progress = Callable[[str, int, int], None]  # (phase, done, total)


def build(sources_dir: Path, out_dir: Path, params: BuildParams, progress: Progress | None = None) -> dict:
    """Build the corpus; return the manifest (also written to ``out_dir/manifest.json``)."""
    started = time.time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.tar"):
        old.unlink()
    items, missing = list_items(sources_dir)
    items = interleave(items)
    if params.limit is not None:
        items = items[: params.limit]

    counts: Counter[tuple[str, str]] = Counter()
    failures: dict[str, list[str]] = defaultdict(list)
    seen: set[str] = set()
    writers = {s: ShardWriter(out_dir, s) for s in ("train", "val")}
    jobs = [(it, params.size, params.seed) for it in items]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(params.workers) as pool:
        for done, (item, record, error) in enumerate(pool.imap(_work, jobs, chunksize=8), 1):
            if record is None:
                failures[item.source].append(f"{item.original_id}: {error}")
            elif record.key in seen:
                failures[item.source].append(f"{item.original_id}: duplicate key {record.key}")
            else:
                seen.add(record.key)
                writers[record.meta["split"]].write(record)
                counts[(item.source, record.meta["split"])] += 1
            if progress:
                progress("images", done, len(jobs))
    for w in writers.values():
        w.close()

    typo_counts = build_typography(sources_dir, out_dir, params, progress)
    manifest = _manifest(out_dir, params, counts, failures, missing, typo_counts, time.time() - started)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    return manifest


def build_typography(
    sources_dir: Path, out_dir: Path, params: BuildParams, progress: Progress | None = None
) -> Counter[str]:
    """The synthetic typography set: scenes with their glyph canvases and exact strings."""
    from limner.typography.fonts import find_fonts
    from limner.typography.scenes import make_scene

    fonts = find_fonts([package_dir(sources_dir, p) for p in FONTS])
    counts: Counter[str] = Counter()
    if not fonts or params.typography <= 0:
        return counts
    writers = {s: ShardWriter(out_dir, f"typography-{s}") for s in ("train", "val")}
    for i in range(params.typography):
        key = f"typography_{i:06d}"
        rng = random.Random(f"{params.seed}:{key}")
        scene = make_scene(rng, params.size, fonts)
        split = split_of(key, params.seed)
        img, glyph = io.BytesIO(), io.BytesIO()
        scene.image.save(img, format="WEBP", quality=92, method=4)
        scene.glyph.save(glyph, format="PNG", optimize=False)
        meta = {
            "key": key,
            "source": "synthetic-typography",
            "licence": "generated by Limner (fonts: " + FONT_LICENCES + ")",
            "original_id": key,
            "split": split,
            "kind": scene.kind,
            "captions": [scene.caption],
            "spans": [asdict(s) for s in scene.spans],
        }
        writers[split].write(Record(key, meta, {"webp": img.getvalue(), "glyph.png": glyph.getvalue()}))
        counts[split] += 1
        if progress:
            progress("typography", i + 1, params.typography)
    for w in writers.values():
        w.close()
    return counts


def _manifest(
    out_dir: Path,
    params: BuildParams,
    counts: Counter,
    failures: dict[str, list[str]],
    missing: list[str],
    typo: Counter,
    seconds: float,
) -> dict:
    sha = hashlib.sha256()
    for path in sorted(out_dir.glob("*.tar")):
        sha.update(path.name.encode())
        sha.update(hashlib.sha256(path.read_bytes()).digest())
    per_source = {}
    for name, src in SOURCES.items():
        per_source[name] = {
            "train": counts[(name, "train")],
            "val": counts[(name, "val")],
            "failed": len(failures.get(name, [])),
            "failed_examples": failures.get(name, [])[:5],
            "licence": src.licence,
            "attribution": src.attribution,
            "homepage": src.homepage,
            "package": f"{src.package.manager}:{src.package.name}",
            "missing": name in missing,
        }
    return {
        "format_version": FORMAT_VERSION,
        "params": asdict(params),
        "images": {
            "train": sum(v for (_, s), v in counts.items() if s == "train"),
            "val": sum(v for (_, s), v in counts.items() if s == "val"),
        },
        "typography": {"train": typo["train"], "val": typo["val"]},
        "sources": per_source,
        "fonts": {"packages": [p.name for p in FONTS], "licence": FONT_LICENCES},
        "shards": sorted(p.name for p in out_dir.glob("*.tar")),
        "sha256": sha.hexdigest(),
        "build_seconds": round(seconds, 1),
    }
