"""What fewer steps, another solver, a σ schedule or guidance on part of the path cost in quality:
the concept and skin-tone prompt sets drawn with each sampling setting, scored by `limner eval`'s
own instruments (prompt fidelity, shape fidelity, Fréchet distance, skin-tone accuracy), and how
far each image moved from the reference setting's image of the same prompt and seed.

    python bench/sampling.py --out bench/results/sampling.json               # the settings below
    python bench/sampling.py --only ref,ref-seed2,dpm8-gi --limit 64           # some of them, quickly

The reference setting runs twice, with seeds 1000 + i and 2000 + i: the gap between those two is
the run-to-run noise every other row should be read against. Images per second are not measured
here (bench/engine.py does that on an idle machine); the row count is what a step costs.
Results are written after each setting, so a cut run keeps what it finished.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from limner.engine import Engine
from limner.engine.registry import ModelSpec, shipped_models
from limner.eval import metrics as M
from limner.eval.instruments import load_instruments
from limner.eval.run import features, fidelity, load_prompts
from limner.eval.sources import generate_images
from limner.model.sampling import flow_sigmas, guided_at

FULL = [0.0, 1.0]
FIT6 = [1.0, 0.95, 0.87, 0.77, 0.6, 0.375]
# name → (sampler, steps, guidance interval, shift, seed[, guidance scale: 4[, more defaults]])
# every setting is drawn without tone guidance unless it names one: the reference is the old default
SETTINGS: dict[str, tuple] = {
    "ref": ("euler", 20, FULL, 1.0, 1000),  # the settings every Limner model had before issue 19
    "ref-seed2": ("euler", 20, FULL, 1.0, 2000),
    # guidance only in the middle (Kynkäänniemi et al.'s interval): at high noise it sets what is drawn
    "euler20-gi": ("euler", 20, [0.2, 0.8], 1.0, 1000),
    "dpm8": ("dpmpp_2m", 8, FULL, 1.0, 1000),
    # more of the steps at high noise, where what is drawn gets decided
    "dpm8-s2": ("dpmpp_2m", 8, FULL, 2.0, 1000),
    "dpm8-s3": ("dpmpp_2m", 8, FULL, 3.0, 1000),
    "dpm7-s3": ("dpmpp_2m", 7, FULL, 3.0, 1000),
    "dpm6-s3": ("dpmpp_2m", 6, FULL, 3.0, 1000),
    # no guidance on the last step (σ 0.375): the six-step setting of docs/performance.md
    "dpm6-s3-hi": ("dpmpp_2m", 6, [0.5, 1.0], 3.0, 1000),
    # six steps on the schedule bench/schedule.py fitted to the reference, image for image
    "fit6": ("dpmpp_2m", 6, [0.5, 1.0], 3.0, 1000, 4.0, {"sigmas": FIT6}),
    "fit6-seed2": ("dpmpp_2m", 6, [0.5, 1.0], 3.0, 2000, 4.0, {"sigmas": FIT6}),
    "fit6-g5": ("dpmpp_2m", 6, [0.5, 1.0], 3.0, 1000, 5.0, {"sigmas": FIT6}),
    "fit6-all": ("dpmpp_2m", 6, FULL, 3.0, 1000, 4.0, {"sigmas": FIT6}),
    "fit6-g4.5": ("dpmpp_2m", 6, [0.5, 1.0], 3.0, 1000, 4.5, {"sigmas": FIT6}),
    "fit6-all-g4.5": ("dpmpp_2m", 6, FULL, 3.0, 1000, 4.5, {"sigmas": FIT6}),
    # Euler on the same levels: a little further from the reference's pixels, nearer its skin tones
    "efit6-all-g4.5": ("euler", 6, FULL, 3.0, 1000, 4.5, {"sigmas": FIT6}),
    "efit6-all-g4.5-tg3": ("euler", 6, FULL, 3.0, 1000, 4.5, {"sigmas": FIT6, "tone_guidance": 3.0}),
    "efit6-all": ("euler", 6, FULL, 3.0, 1000, 4.0, {"sigmas": FIT6}),
    # the API's quality=low and quality=high on limner-1: half and one and a half times its six
    # steps, on the even shift-3 schedule (the fitted levels serve six-step draws only)
    "quality-low": ("euler", 3, FULL, 3.0, 1000, 4.5),
    "quality-high": ("euler", 9, FULL, 3.0, 1000, 4.5),
}


def guided_rows(sampler: str, steps: int, interval: list[float], shift: float, sigmas: list | None = None) -> int:
    """Denoiser rows one image costs: one per evaluation, two where guidance applies."""
    sigmas = sigmas or flow_sigmas(steps, shift)[:-1].tolist()
    per_eval = [2 if guided_at(s, (interval[0], interval[1])) else 1 for s in sigmas]
    return sum(per_eval) * (2 if sampler == "heun" else 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="weights folder (default: the shipped default model)")
    p.add_argument("--only", default=None, help="comma-separated setting names")
    p.add_argument("--limit", type=int, default=None, help="first N prompts of each set")
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--out", type=Path, default=Path("bench/results/sampling.json"))
    args = p.parse_args()

    names = args.only.split(",") if args.only else list(SETTINGS)
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        raise SystemExit(f"unknown settings {unknown}; known: {', '.join(SETTINGS)}")
    base = shipped_models()[-1] if args.model is None else ModelSpec(Path(args.model).name, "limner", Path(args.model))
    instr = load_instruments(args.corpus)
    sets = load_prompts(Path("bench/prompts"), args.limit)
    concepts = [r["prompt"] for r in sets["concepts"]]
    tones = sets["skin_tones"]
    val = [v for v in instr.val_images[:512]]
    from PIL import Image

    f_val = features(instr, [Image.fromarray(a) for a in val])
    results: dict = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["model"] = str(base.path)
    reference: list[np.ndarray] | None = None
    for name in names:
        sampler, steps, interval, shift, seed, *rest = SETTINGS[name]
        guidance = rest[0] if rest else 4.0
        defaults = {
            "sampler": sampler,
            "num_inference_steps": steps,
            "guidance_interval": interval,
            "shift": shift,
            "guidance_scale": guidance,
            "tone_guidance": 0.0,
            "sigmas": [],  # the shifted even schedule, not the weights' own, unless the setting names one
            **(rest[1] if len(rest) > 1 else {}),
        }
        spec = ModelSpec(name, "limner", base.path, {}, defaults)
        engine = Engine(specs=[spec], batching=False)
        t = time.perf_counter()
        images = generate_images(name, concepts, [seed + i for i in range(len(concepts))], instr, engine)
        toned = generate_images(
            name, [r["prompt"] for r in tones], [seed + i for i in range(len(tones))], instr, engine
        )
        seconds = time.perf_counter() - t
        engine.close()
        pixels = [np.asarray(im.convert("RGB"), dtype=np.float32) for im in images]
        if name == "ref":
            reference = pixels
        read = [instr.tone_reader.read(im) for im in toned]
        row = {
            "sampler": sampler,
            "steps": steps,
            "guidance_interval": interval,
            "shift": shift,
            "guidance_scale": guidance,
            "seed": seed,
            "rows_per_image": guided_rows(sampler, steps, interval, shift, defaults.get("sigmas")),
            **({"more": rest[1]} if len(rest) > 1 else {}),
            "fidelity": fidelity(instr.evaluator, instr, images, concepts),
            "shape": fidelity(instr.shape, instr, images, concepts),
            "frechet": M.frechet_distance(features(instr, images), f_val),
            "skin_tone": float(np.mean([r == t["tone"] for r, t in zip(read, tones, strict=True)])),
            "seconds_to_draw": round(seconds, 1),
            "images": len(images) + len(toned),
        }
        if reference is not None and seed == 1000:
            row["mean_abs_change_vs_ref"] = float(
                np.mean([np.abs(a - b).mean() for a, b in zip(pixels, reference, strict=True)])
            )
        results[name] = row
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        print(name, json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
