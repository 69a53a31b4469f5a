"""Screen sampling settings against `limner eval` runs on the same seed: each setting draws the
concept and skin-tone prompt sets as the eval does (the typography set, the slow part, is left
out), and limner/eval/paired.py reads every change from each given eval folder prompt by prompt
— prompt and shape fidelity, Fréchet distance, skin-tone accuracy — with a 95 % interval over
resampled prompts. A screen is a quick first look (about two minutes a six-step setting on the
2-core machine); a setting worth keeping then gets full `limner eval` runs on several seeds.

    python bench/screen.py --against reports/old-3000 reports/new-3000 --seed 3000 \\
        --setting 'low-last={"sigmas": [1, 0.95, 0.87, 0.7, 0.45, 0.2]}' --setting 'dpm={"sampler": "dpmpp_2m"}'

A setting is NAME=JSON: sampling defaults laid over the model's own (sampling.json). Each
setting's images are scored into WORK/NAME-SEED (per_prompt.json and features.npz, as `limner
eval` writes them), and the table is appended to --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from limner.engine import Engine
from limner.engine.registry import ModelSpec, shipped_models
from limner.eval.instruments import load_instruments
from limner.eval.paired import Run, compare
from limner.eval.run import (
    REFERENCE_MODELS,
    concept_rows,
    features,
    fidelity_hits,
    load_prompts,
    save_per_prompt,
    tone_rows,
)
from limner.eval.sources import generate_images


def setting(text: str) -> tuple[str, dict]:
    name, _, body = text.partition("=")
    try:
        defaults = json.loads(body)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: not NAME=JSON ({e})") from e
    if not name or not isinstance(defaults, dict):
        raise argparse.ArgumentTypeError(f"{text!r}: not NAME=JSON object")
    return name, defaults


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--against", nargs="+", type=Path, required=True, help="limner eval folders drawn on --seed")
    p.add_argument("--setting", type=setting, action="append", required=True, help="NAME=JSON sampling defaults")
    p.add_argument("--seed", type=int, required=True, help="the eval folders' seed (prompt i gets SEED + i)")
    p.add_argument("--model", type=Path, default=None, help="weights folder (default: the shipped default model)")
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--work", type=Path, default=Path("runs/screen"))
    p.add_argument("--out", type=Path, default=Path("bench/results/screen.json"))
    args = p.parse_args()

    reserved = [name for name, _ in args.setting if name in REFERENCE_MODELS]
    if reserved:
        raise SystemExit(f"{reserved}: the eval's reference models' names; call the settings otherwise")
    sets = load_prompts(Path("bench/prompts"), None)
    concepts = [r["prompt"] for r in sets["concepts"]]
    tones = sets["skin_tones"]
    runs = [Run(base) for base in args.against]
    for base, run in zip(args.against, runs, strict=True):  # before minutes of drawing: full runs on this seed?
        want = {"concepts": concepts, "skin_tones": [r["prompt"] for r in tones]}
        for name, prompts in want.items():
            if run.key(name) != [(p, args.seed + i) for i, p in enumerate(prompts)]:
                raise SystemExit(f"{base}: not a full `limner eval` run of the {name} prompts on seed {args.seed}")
    path = args.model or shipped_models()[-1].path
    instr = load_instruments(args.corpus)
    results: dict = json.loads(args.out.read_text()) if args.out.exists() else {}
    for name, defaults in args.setting:
        engine = Engine(specs=[ModelSpec(name, "limner", path, {}, defaults)], batching=False)
        t = time.perf_counter()
        images = generate_images(name, concepts, [args.seed + i for i in range(len(concepts))], instr, engine)
        toned = generate_images(
            name, [r["prompt"] for r in tones], [args.seed + i for i in range(len(tones))], instr, engine
        )
        seconds = time.perf_counter() - t
        engine.close()
        hits = [fidelity_hits(e, instr, images, concepts) for e in (instr.evaluator, instr.shape)]
        rows = {
            "concepts": concept_rows(concepts, args.seed, *hits),
            "skin_tones": tone_rows(tones, args.seed, [instr.tone_reader.read(im) for im in toned]),
        }
        folder = args.work / f"{name}-{args.seed}"
        folder.mkdir(parents=True, exist_ok=True)
        save_per_prompt(folder, rows, features(instr, images), runs[0].real)
        row: dict = {"defaults": defaults, "seed": args.seed, "seconds_to_draw": round(seconds, 1), "against": {}}
        for base in args.against:
            got = compare([base], [folder], rounds=1000, frechet_rounds=100)["metrics"]
            row["against"][str(base)] = {
                k: {"new": m["new"][0], "change": m["change"], "interval": m["interval"]} for k, m in got.items()
            }
            print(f"{name} (seed {args.seed}) against {base}:")
            for k, m in got.items():
                lo, hi = m["interval"]
                print(f"  {k:28} {m['new'][0]:.3f}  change {m['change']:+.3f} [{lo:+.3f}, {hi:+.3f}]")
        results[f"{name}@{args.seed}"] = row
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
