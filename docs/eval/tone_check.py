"""How well the skin-tone reader reads real emoji: the shipped reader on the held-out split (per
source, with confusion matrices), a 5-fold cross-validation on the training split grouped by
subject (every fold's subjects unseen in calibration: 24× more images to score than the held-out
split has), what each part of the reader is worth, and how often it reads no tone where none is
drawn (line icons, emoji without a tone). The tables in docs/evaluation.md
("Skin tone") come from

    python docs/eval/tone_check.py --out docs/eval/tone-check.json --sheet docs/eval/fluent-3d-tones.webp

The sheet shows why the reader scores Fluent 3D on the tone drawn (limner.data.catalog.DRAWN_AS):
for a few subjects, the five files coded light … dark of Fluent flat (rows 1, 3, …) and of the
Fluent 3D package (rows 2, 4, …), in code-point order.
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np

from limner.eval import metrics as M
from limner.eval.tone import TONES, ReaderConfig, ToneReader, calibrate, colour_bins, emoji_records


def load(corpus: Path, split: str) -> list[dict]:
    return [
        {
            "rgb": rgb,
            "mask": mask,
            "tone": tone,  # drawn; None for emoji without a tone and line icons
            "label": (meta["skin_tones"] or [None])[0] if tone else None,  # as the code points name it
            "style": meta["style"],
            "source": meta["source"],
            "name": meta["name"].split(":")[0],  # the subject, for grouping folds
        }
        for rgb, mask, tone, meta in emoji_records(corpus, split)
    ]


def summarise(rows: list[dict], read: list[str | None], truth: str = "tone") -> dict:
    """Accuracy and confusion per source on the toned rows; how often no tone is read for the others."""
    toned = [i for i, r in enumerate(rows) if r[truth] is not None]
    out: dict = {}
    for source in ["all", *sorted({rows[i]["source"] for i in toned})]:
        pick = [i for i in toned if source in ("all", rows[i]["source"])]
        t, p = [rows[i][truth] for i in pick], [read[i] for i in pick]
        out[source] = {
            "n": len(pick),
            "accuracy": round(float(np.mean([a == b for a, b in zip(t, p, strict=True)])), 4),
            "confusion": M.confusion(t, p),
        }
    for kind, test in (
        ("line icons read as none", lambda r: r["style"] == "black and white line icon"),
        (
            "emoji without a tone read as none",
            lambda r: r["tone"] is None and r["style"] != "black and white line icon",
        ),
    ):
        pick = [i for i, r in enumerate(rows) if test(r)]
        out[kind] = {"n": len(pick), "share": round(float(np.mean([read[i] is None for i in pick])), 4)}
    return out


def fit(
    rows: list[dict], config: ReaderConfig, truth: str = "tone", pooled: bool = False, whole_image: bool = False
) -> ToneReader:
    return calibrate(
        (
            (
                r["rgb"],
                np.ones_like(r["mask"]) if whole_image else r["mask"],
                r[truth],
                "all" if pooled and r[truth] else r["style"],
            )
            for r in rows
        ),
        config,
    )


def read_whole(reader: ToneReader, rgb: np.ndarray) -> str:
    """The ablation without background removal: every pixel counts, and a tone is always read."""
    ll = reader.log_p[:, colour_bins(rgb.reshape(-1, 3), reader.config.levels)].sum(1)
    return TONES[int(ll.reshape(len(reader.styles), len(TONES)).max(0).argmax())]


def cross_validate(rows: list[dict], config: ReaderConfig, truth: str = "tone", folds: int = 5, **kw) -> dict:
    """Grouped k-fold on ``rows``: calibrate on k − 1 folds of subjects, read the held-out fold."""
    fold = [zlib.crc32(r["name"].encode()) % folds for r in rows]
    read: list[str | None] = [None] * len(rows)
    for f in range(folds):
        reader = fit([r for r, g in zip(rows, fold, strict=True) if g != f], config, truth, **kw)
        for i, g in enumerate(fold):
            if g == f:
                read[i] = read_whole(reader, rows[i]["rgb"]) if kw.get("whole_image") else reader.read(rows[i]["rgb"])
    summary = summarise(rows, read, truth)
    return {k: v["accuracy"] if "accuracy" in v else v["share"] for k, v in summary.items()}


def tone_sheet(corpus: Path, out: Path, subjects: int = 4, side: int = 64) -> None:
    """Rows of five tones by code point: Fluent flat, then Fluent 3D, for the first subjects both draw."""
    from PIL import Image

    from limner.data.shards import iter_records, shard_paths

    by = {}  # (source, subject) → {code-point tone: rgba}
    for rec in iter_records(shard_paths(corpus, "train")):
        tones = rec.meta.get("skin_tones", [])
        if rec.meta["source"] in ("fluent-flat", "fluent-3d") and len(tones) == 1:
            by.setdefault((rec.meta["source"], rec.meta["name"].split(":")[0]), {})[tones[0]] = rec.rgba()
    both = [
        n for (s, n), d in by.items() if s == "fluent-3d" and len(d) == 5 and len(by.get(("fluent-flat", n), {})) == 5
    ]

    def skin_share(n: str) -> float:  # how much of the drawing changes from light to dark
        a, b = (np.asarray(by["fluent-flat", n][t].resize((side, side)), dtype=np.int32) for t in ("light", "dark"))
        return float((np.abs(a - b)[..., :3].sum(-1) > 60).mean())

    both = sorted(both, key=skin_share, reverse=True)  # hands and faces first
    rows = [by[source, n] for n in both[:subjects] for source in ("fluent-flat", "fluent-3d")]
    sheet = Image.new("RGBA", (side * 5, side * len(rows)), "white")
    for r, row in enumerate(rows):
        for c, tone in enumerate(TONES):
            sheet.alpha_composite(row[tone].resize((side, side), Image.Resampling.LANCZOS), (c * side, r * side))
    sheet.convert("RGB").save(out, quality=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    ap.add_argument("--reader", type=Path, default=Path("weights/skin-tone-reader.safetensors"))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--sheet", type=Path, default=None, help="write the Fluent flat / 3D tone sheet here")
    args = ap.parse_args()
    started = time.time()
    if args.sheet:
        tone_sheet(args.corpus, args.sheet)
    train, val = load(args.corpus, "train"), load(args.corpus, "val")
    shipped = ToneReader.load(args.reader)
    toned_val = [r for r in val if r["tone"]]
    ita = [M.classify_tone(r["rgb"]) for r in toned_val]
    report: dict = {
        "images": {"train": len(train), "val": len(val)},
        "held_out": summarise(val, [shipped.read(r["rgb"]) for r in val]),
        "held_out_ita": {
            "vs drawn tone": round(float(np.mean([p == r["tone"] for p, r in zip(ita, toned_val, strict=True)])), 4),
            "vs code points": round(float(np.mean([p == r["label"] for p, r in zip(ita, toned_val, strict=True)])), 4),
        },
    }
    cfg = shipped.config
    report["cross_validation"] = {
        "shipped design": cross_validate(train, cfg),
        "labels from code points (no Fluent 3D fix)": cross_validate(train, cfg, truth="label"),
        "one palette for all styles": cross_validate(train, cfg, pooled=True),
        "no background removal": cross_validate(train, cfg, whole_image=True),
        "16 levels per channel": cross_validate(train, replace(cfg, levels=16)),
        "no smoothing": cross_validate(train, replace(cfg, sigma=0.0)),
    }
    report["seconds"] = round(time.time() - started)
    print(json.dumps({k: v for k, v in report.items() if k != "held_out"}, indent=1))
    for key, v in report["held_out"].items():
        print(f"held-out {key}: {v}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
