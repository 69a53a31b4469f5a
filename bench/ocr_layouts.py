"""How well the evaluation's OCR reads the exact layouts, with no model in the way.

Lays out every prompt of ``bench/prompts/typography.jsonl`` with the typography engine (the
scene ``limner generate`` would set in "auto" mode, before any model runs) and scores it with
the same OCR and metrics as ``limner eval``. This is the ceiling an exact-text model can reach
under this OCR: a miss here is the reader's, not the image's.

    python bench/ocr_layouts.py [--limit N] [--size 256] [--out bench/ocr-layouts.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from limner.eval.run import ocr_scores
from limner.typography.pipeline import prepare


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    rows = [json.loads(line) for line in Path("bench/prompts/typography.jsonl").read_text().splitlines()]
    rows = rows[: args.limit] if args.limit else rows
    t0 = time.perf_counter()
    layouts = [prepare(row["prompt"], args.seed + i, args.size).scene.image for i, row in enumerate(rows)]
    out = ocr_scores(layouts, rows, workers=1)  # the same scoring as limner eval
    seconds = time.perf_counter() - t0
    summary = {
        "prompts": len(out),
        "word_accuracy": sum(o["word_accuracy"] for o in out) / len(out),
        "ned_spans": sum(o["ned"] for o in out) / len(out),
        "ned_whole": sum(o["ned_whole"] for o in out) / len(out),
        "perfect": sum(o["word_accuracy"] == 1.0 for o in out),
        "seconds": round(seconds, 1),
    }
    print(json.dumps(summary, indent=2))
    worst = sorted(out, key=lambda o: o["word_accuracy"])[:5]
    print("lowest:", ", ".join(f"{o['id']} {o['word_accuracy']:.2f}" for o in worst))
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "rows": out}, indent=1))


if __name__ == "__main__":
    main()
