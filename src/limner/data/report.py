"""``limner data stats`` and ``limner data sheet``: look at a built corpus."""

from __future__ import annotations

import json
import random
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from limner.data.shards import iter_records, shard_paths


def load_manifest(corpus_dir: Path) -> dict:
    path = Path(corpus_dir) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `limner data build --out {corpus_dir}` first")
    return json.loads(path.read_text())


def caption_examples(corpus_dir: Path, n: int = 5, seed: int = 0) -> list[tuple[str, list[str]]]:
    """(key, captions) of ``n`` records drawn from the first training shard."""
    paths = shard_paths(corpus_dir, "train")[:1]
    records = [(r.key, r.meta["captions"]) for r in iter_records(paths)]
    return random.Random(seed).sample(records, min(n, len(records)))


def contact_sheet(
    corpus_dir: Path, out: Path, n: int = 24, seed: int = 0, split: str = "train", cell: int = 192
) -> Path:
    """A grid of random records, each image above its first two captions."""
    paths = shard_paths(corpus_dir, split) + shard_paths(corpus_dir, split, "typography")
    if not paths:
        raise FileNotFoundError(f"no {split} shards in {corpus_dir}")
    rng = random.Random(seed)
    chosen = rng.sample(paths, min(len(paths), max(1, n // 4)))
    pool = [r for r in iter_records(chosen)]
    records = rng.sample(pool, min(n, len(pool)))
    cols = 6
    text_h = 70
    rows = (len(records) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * cell, rows * (cell + text_h)), (250, 250, 250))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(12)
    for i, rec in enumerate(records):
        x, y = (i % cols) * cell, (i // cols) * (cell + text_h)
        sheet.paste(rec.image().resize((cell, cell)), (x, y))
        caps = rec.meta["captions"][:2]
        lines = [ln for c in caps for ln in textwrap.wrap(c, 30)][:5]
        draw.multiline_text((x + 3, y + cell + 2), "\n".join(lines), fill=(20, 20, 20), font=font, spacing=1)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
