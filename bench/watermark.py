"""The watermark's robustness, invisibility and false alarms, and what provenance costs per image.

    nice -n 10 python bench/watermark.py generate [--count 240]   # images of the shipped model, cached
    nice -n 10 python bench/watermark.py overhead [--images 5]    # marking + signing vs making one image
    nice -n 10 python bench/watermark.py robustness [--count 240] [--corpus 300]

``generate`` draws ``--count`` images with the shipped model (prompts from
bench/prompts/concepts.jsonl, four seeds per prompt, one request each) into runs/watermark/images/ and skips
those already there. ``robustness`` marks each with its own random 32-bit payload, reports the
PSNR, then after each transformation below whether ``detect`` decodes the exact payload; and runs
the detector on ``--corpus`` unmarked corpus images (validation split, every source) to count
false alarms. ``overhead`` times, in one process, making one image (``Engine.generate``, PNG
encoding) against the same with the watermark, its ``marks`` row and a signed C2PA manifest.
Results go to bench/results/watermark.json (merged, one key per command).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "runs" / "watermark" / "images"
RESULTS = ROOT / "bench" / "results" / "watermark.json"
PROMPTS = ROOT / "bench" / "prompts" / "concepts.jsonl"
CORPUS = ROOT / "data" / "corpus"


# -- the transformations the mark must survive --------------------------------------------------------


def jpeg(image: Image.Image, quality: int = 70) -> Image.Image:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def half(image: Image.Image) -> Image.Image:
    return image.resize((image.width // 2, image.height // 2), Image.Resampling.BICUBIC)


def crop10(image: Image.Image) -> Image.Image:
    """10 % off each side's length, unevenly (so the crop does not fall on the mark's tiles)."""
    w, h = image.size
    return image.crop((round(0.07 * w), round(0.03 * h), round(0.97 * w), round(0.93 * h)))


def screenshot(image: Image.Image) -> Image.Image:
    """What a screenshot of the image on a web page gives: shown at 125 % (display scaling,
    bilinear), on a white page with margins, captured and saved as JPEG quality 85."""
    w, h = image.size
    shown = image.convert("RGB").resize((round(w * 1.25), round(h * 1.25)), Image.Resampling.BILINEAR)
    page = Image.new("RGB", (shown.width + 37, shown.height + 23), (255, 255, 255))
    page.paste(shown, (21, 9))
    return jpeg(page, 85)


def brighter(image: Image.Image) -> Image.Image:
    return ImageEnhance.Brightness(image.convert("RGB")).enhance(1.1)


def darker(image: Image.Image) -> Image.Image:
    return ImageEnhance.Brightness(image.convert("RGB")).enhance(0.9)


TRANSFORMS = {
    "none": lambda im: im,
    "jpeg_q70": jpeg,
    "resize_half": half,
    "crop_10pct": crop10,
    "screenshot": screenshot,
    "brightness_+10pct": brighter,
    "brightness_-10pct": darker,
}


# -- commands -------------------------------------------------------------------------------------------


def _prompts() -> list[str]:
    return [json.loads(line)["prompt"] for line in PROMPTS.read_text().splitlines() if line.strip()]


def generate(count: int, start: int = 0, per_prompt: int = 4) -> None:
    """Image i: prompt i // per_prompt, seed i (one request per prompt: batched, and varied)."""
    from limner.engine import Engine, GenerationRequest

    IMAGES.mkdir(parents=True, exist_ok=True)
    prompts = _prompts()
    engine = Engine(batching=False)
    t0 = time.perf_counter()
    for first in range(start - start % per_prompt, count, per_prompt):
        if all((IMAGES / f"{i:04d}.png").exists() for i in range(first, first + per_prompt)):
            continue
        prompt = prompts[first // per_prompt % len(prompts)]
        for k, im in enumerate(engine.generate(GenerationRequest(prompt, n=per_prompt, seed=first))):
            im.image.save(IMAGES / f"{first + k:04d}.png")
        print(f"{first + per_prompt:4d} images {time.perf_counter() - t0:7.1f}s  {prompt}", flush=True)


def _save(section: str, result: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[section] = result
    RESULTS.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(json.dumps(result, indent=1))


def corpus_images(count: int) -> list[Image.Image]:
    """``count`` validation images of the corpus, taken round-robin over its sources."""
    by_source: dict[str, list[bytes]] = {}
    for shard in sorted(CORPUS.glob("val-*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar:
                if member.name.endswith(".webp"):
                    fh = tar.extractfile(member)
                    if fh is not None:
                        by_source.setdefault(member.name.split("_", 1)[0], []).append(fh.read())
    out: list[Image.Image] = []
    queues = [list(reversed(v)) for v in by_source.values()]
    while len(out) < count and any(queues):
        for q in queues:
            if q and len(out) < count:
                image = Image.open(io.BytesIO(q.pop()))
                if image.mode in ("RGBA", "LA", "P"):  # composited on white, as a page would show it
                    rgba = image.convert("RGBA")
                    page = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                    image = Image.alpha_composite(page, rgba)
                out.append(image.convert("RGB"))
    return out


def _measure(path: Path, payload: int) -> dict:
    """One generated image: marked with ``payload`` (from its file name: a run can resume), its PSNR, and per transformation whether the
    exact payload came back (and the pilot's z); whether the unmarked image raised an alarm."""
    from limner.provenance import watermark

    image = Image.open(path).convert("RGB")
    marked = watermark.embed(image, payload)
    row: dict = {"image": path.name, "psnr": watermark.psnr(image, marked), "alarm": watermark.detect(image).found}
    for name, transform in TRANSFORMS.items():
        d = watermark.detect(transform(marked))
        row[name] = [d.payload == payload, round(d.z, 2)]
    return row


def robustness(count: int, corpus: int) -> None:
    """Resumable: per-image results are kept in runs/watermark/robustness.jsonl."""
    from limner.provenance import watermark

    paths = sorted(IMAGES.glob("*.png"))[:count]
    cache = IMAGES.parent / "robustness.jsonl"
    done = {}
    if cache.exists():
        done = {r["image"]: r for r in map(json.loads, cache.read_text().splitlines())}
    payloads = {p.name: int.from_bytes(hashlib.sha256(p.name.encode()).digest()[:4], "big") for p in paths}
    t0 = time.perf_counter()
    with cache.open("a") as fh:
        for path in paths:
            if path.name not in done:
                done[path.name] = _measure(path, payloads[path.name])
                fh.write(json.dumps(done[path.name]) + "\n")
                fh.flush()
                print(f"{path.name} {time.perf_counter() - t0:6.0f}s", flush=True)
    rows = [done[p.name] for p in paths]
    n = len(rows)
    if n < count:
        print(f"only {n} images in {IMAGES} so far (run `generate --count {count}`): partial figures")
    seen = IMAGES.parent / f"corpus-{corpus}.jsonl"  # (found, z) per unmarked corpus image, resumable
    checked = [json.loads(line) for line in seen.read_text().splitlines()] if seen.exists() else []
    plain = corpus_images(corpus)
    with seen.open("a") as fh:
        for image in plain[len(checked) :]:
            d = watermark.detect(image)
            checked.append([d.found, round(d.z, 2)])
            fh.write(json.dumps(checked[-1]) + "\n")
    alarms, corpus_z = sum(f for f, _ in checked), [z for _, z in checked]
    psnrs = [r["psnr"] for r in rows]
    _save(
        "robustness",
        {
            "images": n,
            "detected": {k: f"{sum(r[k][0] for r in rows)}/{n}" for k in TRANSFORMS},
            "detection_rate": {k: round(sum(r[k][0] for r in rows) / n, 4) for k in TRANSFORMS},
            "pilot_z_median": {k: round(float(np.median([r[k][1] for r in rows])), 2) for k in TRANSFORMS},
            "psnr_db": {
                "min": round(min(psnrs), 2),
                "mean": round(float(np.mean(psnrs)), 2),
                "max": round(max(psnrs), 2),
            },
            "false_alarms_unmarked_generated": f"{sum(r['alarm'] for r in rows)}/{n}",
            "false_alarms_corpus": f"{alarms}/{len(plain)}",
            "false_alarm_rate_corpus": round(alarms / len(plain), 4),
            "corpus_pilot_z_max": round(max(corpus_z), 2),
        },
    )


def overhead(images: int) -> None:
    """Per image, in one process: Engine.generate + PNG, then marking (embed + its row) and the
    signed encoding. The first request warms the model up and is not counted."""
    from limner.engine import Engine, GenerationRequest
    from limner.provenance import Provenance
    from limner.provenance.credentials import make_chain
    from limner.store.db import Database

    engine = Engine(batching=False)
    engine.generate(GenerationRequest("a red apple", seed=0))
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/bench.db")
        db.migrate()
        provenance = Provenance(make_chain(), "bench-secret")
        make, stamp, prompts = [], [], _prompts()
        for i in range(images):
            t = time.perf_counter()
            (im,) = engine.generate(GenerationRequest(prompts[i], seed=1000 + i))
            im.png_bytes()
            t1 = time.perf_counter()
            with db.session() as s:
                provenance.stamp(s, [im], request_id=f"bench-{i}")
            im.png_bytes()  # now watermarked and signed
            t2 = time.perf_counter()
            make.append(t1 - t)
            stamp.append(t2 - t1)
            print(f"make {t1 - t:.2f}s  mark+sign {t2 - t1:.3f}s", flush=True)
    _save(
        "overhead",
        {
            "images": images,
            "make_seconds_median": round(float(np.median(make)), 3),
            "mark_and_sign_seconds_median": round(float(np.median(stamp)), 4),
            "overhead_share": round(float(np.sum(stamp) / np.sum(make)), 4),
        },
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--count", type=int, default=240)
    g.add_argument("--start", type=int, default=0, help="first image index (to run in parts)")
    o = sub.add_parser("overhead")
    o.add_argument("--images", type=int, default=5)
    r = sub.add_parser("robustness")
    r.add_argument("--count", type=int, default=240)
    r.add_argument("--corpus", type=int, default=300)
    args = p.parse_args()
    if args.command == "generate":
        generate(args.count, args.start)
    elif args.command == "overhead":
        overhead(args.images)
    else:
        robustness(args.count, args.corpus)


if __name__ == "__main__":
    main()
