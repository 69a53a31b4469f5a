"""Where a model's skin tones go wrong: the skin-tone prompt set (bench/prompts/skin_tones.jsonl,
seeds 1000 + i as `limner eval` draws them) read by the shipped skin-tone reader, per tone asked,
per style and for hands against whole people, with the mean signed error in tone steps
(negative: drawn lighter than asked). One row per model and guidance scale.

    python bench/tones.py                                        # the default model, guidance 4
    python bench/tones.py --guidance 4,6,8                       # guidance on the tone words
    python bench/tones.py --model runs/tone/snapshots/*.safetensors --out runs/tone/curve.json
    python bench/tones.py --negative toneless,other-tones        # guidance away from other tones
    python bench/tones.py --tone-guidance 0,2,3                  # tone guidance (engine/tones.py)

A snapshot file (EMA weights only, as `limner train --keep-every` writes them) is drawn with the
default model's upsampler beside it, so its images are made as the shipped model's are.
Results are written after each row, so a cut run keeps what it finished.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from itertools import product
from pathlib import Path

import numpy as np

from limner.engine import Engine, GenerationRequest
from limner.engine.registry import ModelSpec, shipped_models
from limner.engine.tones import without_tone
from limner.eval.instruments import load_instruments
from limner.eval.run import fidelity, load_prompts
from limner.eval.tone import TONES

HANDS = re.compile(r"hand|fist|biceps|thumbs")
STYLES = {
    "3D": re.compile(r"3D"),
    "glossy": re.compile(r"glossy"),
    "outlined": re.compile(r"outline"),
    "flat": re.compile(r"flat"),
}


def negative_for(prompt: str, asked: str, kind: str) -> str:
    """The negative prompt guidance pushes away from: none (the empty prompt), the prompt without
    its tone ("toneless": guidance then acts on the tone alone), or the other four tones named."""
    if kind == "none":
        return ""
    if kind == "toneless":
        return without_tone(prompt)
    return ", ".join(f"{t} skin tone" for t in TONES if t != asked)


def model_dir(path: Path, upsampler_from: Path, scratch: Path) -> Path:
    """A weights folder for ``path``: itself, or for a bare denoiser file a folder holding it and
    the default model's upsampler (symbolic links)."""
    if path.is_dir():
        return path
    folder = scratch / path.stem
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "denoiser.safetensors").symlink_to(path.resolve())
    if (upsampler_from / "upsampler.safetensors").exists():
        (folder / "upsampler.safetensors").symlink_to((upsampler_from / "upsampler.safetensors").resolve())
    return folder


def summary(asked: list[str], read: list[str | None], prompts: list[str]) -> dict:
    """Accuracy, confusion (rows asked, columns read then none), the mean signed error in tone
    steps over readable images, and accuracy per style and for hands against whole people."""
    confusion = np.zeros((len(TONES), len(TONES) + 1), dtype=int)
    errors = []
    for a, r in zip(asked, read, strict=True):
        col = TONES.index(r) if r is not None else len(TONES)
        confusion[TONES.index(a), col] += 1
        if r is not None:
            errors.append(TONES.index(r) - TONES.index(a))
    right = np.array([a == r for a, r in zip(asked, read, strict=True)])

    def acc(mask: np.ndarray) -> dict:
        return {"n": int(mask.sum()), "accuracy": round(float(right[mask].mean()), 3) if mask.any() else None}

    hands = np.array([bool(HANDS.search(p)) for p in prompts])
    return {
        "accuracy": round(float(right.mean()), 3),
        "none": int(confusion[:, -1].sum()),
        "mean_signed_error": round(float(np.mean(errors)), 3) if errors else None,
        "per_tone": {t: round(float(confusion[i, i] / max(confusion[i].sum(), 1)), 3) for i, t in enumerate(TONES)},
        "hands": acc(hands),
        "people": acc(~hands),
        "styles": {s: acc(np.array([bool(rx.search(p)) for p in prompts])) for s, rx in STYLES.items()},
        "confusion": confusion.tolist(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", nargs="*", default=None, help="weights folders or snapshot files")
    p.add_argument("--guidance", default="4", help="comma-separated guidance scales")
    p.add_argument("--seed", type=int, default=1000, help="image i is drawn with seed SEED + i")
    p.add_argument("--negative", default="none", help="comma-separated: none, toneless, other-tones")
    p.add_argument(
        "--tone-guidance",
        default="",
        help="comma-separated tone guidance weights (engine/tones.py; default: the model's)",
    )
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--out", type=Path, default=Path("bench/results/tones.json"))
    args = p.parse_args()

    shipped = shipped_models()[-1].path
    paths = [Path(m) for m in args.model] if args.model else [shipped]
    instr = load_instruments(args.corpus)
    tones = load_prompts(Path("bench/prompts"), None)["skin_tones"]
    prompts, asked = [r["prompt"] for r in tones], [r["tone"] for r in tones]
    results: dict = json.loads(args.out.read_text()) if args.out.exists() else {}
    with tempfile.TemporaryDirectory() as scratch:
        for path in paths:
            folder = model_dir(path, shipped, Path(scratch))
            settings = product(
                [float(g) for g in args.guidance.split(",")],
                args.negative.split(","),
                [float(t) for t in args.tone_guidance.split(",")] if args.tone_guidance else [None],
            )
            for guidance, negative, tone_guidance in settings:
                name = f"{path.stem if path.is_file() else path.name}@g{guidance:g}"
                name += f"-{negative}" if negative != "none" else ""
                name += f"-tg{tone_guidance:g}" if tone_guidance is not None else ""
                defaults = {"guidance_scale": guidance}
                if tone_guidance is not None:
                    defaults["tone_guidance"] = tone_guidance
                spec = ModelSpec(name, "limner", folder, {}, defaults)
                engine = Engine(specs=[spec], batching=False)
                t = time.perf_counter()
                requests = [
                    GenerationRequest(p, negative_prompt=negative_for(p, a, negative), seed=args.seed + i, model=name)
                    for i, (p, a) in enumerate(zip(prompts, asked, strict=True))
                ]
                images = [engine.generate(r)[0].image for r in requests]
                used = engine.models()[0]["defaults"].get("tone_guidance", 0.0)  # the model's, when not set here
                engine.close()
                read = [instr.tone_reader.read(im) for im in images]
                # is the subject still drawn? the evaluator's prompt fidelity on these 75 (top-1 of 32)
                row = {
                    "fidelity": round(fidelity(instr.evaluator, instr, images, prompts), 3),
                    "model": str(path),
                    "guidance_scale": guidance,
                    "negative": negative,
                    "tone_guidance": used,
                    "seed": args.seed,
                    **summary(asked, read, prompts),
                }
                row["seconds"] = round(time.perf_counter() - t, 1)
                results[f"{name}@s{args.seed}"] = row
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(results, indent=2))
                print(name, json.dumps({k: v for k, v in row.items() if k != "confusion"}), flush=True)


if __name__ == "__main__":
    main()
