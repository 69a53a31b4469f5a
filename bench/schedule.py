"""Fit a few-step σ schedule to the reference sampler: the noise levels at which a short sampler
evaluates the model, chosen so that its images come out as close as possible to what the
reference (20 Euler steps, guidance on every step) draws from the same prompt and noise.

    python bench/schedule.py                  # 6 DPM-Solver++(2M) steps from the shift-3 schedule
    python bench/schedule.py --steps 5 --start 0.95,0.87,0.72,0.5 --out /tmp/five.json

limner-1 ships the first command's levels rounded to two digits, drawn with Euler steps (which
kept more of the reference's skin tones than DPM-Solver++ on the same levels: docs/performance.md).

Why match the reference image for image rather than score each candidate with the eval's
instruments: a schedule whose images are the reference's images inherits every one of its
measured qualities at once, and the distance needs no instrument and no reference statistics.
The distance is the per-image RMS pixel difference at the model's own 64 px (0–255 levels),
averaged over prompts that the eval does not use: 48 captions of the corpus's validation split,
8 skin-tone prompts of the preference loop's kind and 8 posters with quoted words, seeds 5000 + i.

The search is coordinate descent on the logits of the levels after the first (which stays 1):
each level in turn is nudged up and down by δ, a nudge is kept when it lowers the distance, and δ
halves when a sweep keeps none. The landscape is not smooth: the reference's own grid (σ = 1,
0.95, 0.90 …) decides what is drawn in its first few steps, and a short schedule that lands on
0.95 after the first step starts from the very state the reference reaches there.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from preference import voter_prompts  # noqa: E402

from limner.engine.builtin import LimnerBackend  # noqa: E402
from limner.engine.registry import shipped_models  # noqa: E402
from limner.engine.request import GenerationRequest  # noqa: E402
from limner.model.sampling import flow_sigmas  # noqa: E402

# the default before issue 19, and the guidance the short sampler was fitted with
GUIDANCE = {"guidance_scale": 4.0, "tone_guidance": 1.5}
REFERENCE = {
    "sampler": "euler",
    "num_inference_steps": 20,
    "shift": 1.0,
    "guidance_interval": [0.0, 1.0],
    "sigmas": [],
    **GUIDANCE,
}
WORDS = ["Harbor", "Lemon", "Quiet", "Forge", "Maple", "Orbit", "Velvet", "Pixel"]


def fit_prompts(corpus: Path, seed: int = 7) -> list[str]:
    """48 validation captions, 8 skin-tone prompts, 8 posters: none of them the eval's."""
    with np.load(corpus / "trainset-64-val.npz") as z:
        meta = json.loads(z["meta"].tobytes())
    rng = random.Random(seed)
    prompts = [rng.choice(meta["captions"][i]) for i in rng.sample(range(len(meta["captions"])), 48)]
    prompts += voter_prompts(corpus, 8, 11)
    return prompts + [f'a poster that says "{w}", bold letters' for w in WORDS]


def draw(backend: LimnerBackend, prompts: list[str], settings: dict) -> np.ndarray:
    """The 64 px images of ``prompts`` (seeds 5000 + i) with the backend's defaults set to ``settings``."""
    backend.defaults.update(settings)
    backend.defaults["guidance_interval"] = tuple(backend.defaults["guidance_interval"])
    backend.defaults["sigmas"] = tuple(backend.defaults["sigmas"])
    side = f"{backend.base}x{backend.base}"
    out = []
    for k in range(0, len(prompts), 32):
        requests = [GenerationRequest(p, seed=5000 + k + i, size=side) for i, p in enumerate(prompts[k : k + 32])]
        for result in backend.generate(requests):
            assert isinstance(result, list)
            out.append(np.asarray(result[0].image.convert("RGB"), dtype=np.float32))
    return np.stack(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=None, help="weights folder (default: the shipped default model)")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--sampler", default="dpmpp_2m")
    p.add_argument("--guidance-interval", default="0,1", help="lo,hi: where the short sampler guides")
    p.add_argument("--start", default=None, help="levels after the first to start from (default: shift 3)")
    p.add_argument("--deltas", default="0.4,0.2,0.1", help="nudges in logit space, largest first")
    p.add_argument("--corpus", type=Path, default=REPO / "data" / "corpus")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "schedule.json")
    args = p.parse_args()

    path = args.model or shipped_models()[-1].path
    backend = LimnerBackend("fit", path, device="cpu")
    prompts = fit_prompts(args.corpus)
    t = time.perf_counter()
    reference = draw(backend, prompts, REFERENCE)
    print(f"reference: {len(prompts)} images in {time.perf_counter() - t:.0f} s", flush=True)
    interval = [float(v) for v in args.guidance_interval.split(",")]
    short = {"sampler": args.sampler, "num_inference_steps": args.steps, "guidance_interval": interval, **GUIDANCE}

    def distance(levels: list[float]) -> tuple[float, np.ndarray]:
        x = draw(backend, prompts, {**short, "sigmas": levels})
        per = np.sqrt(((x - reference) ** 2).mean(axis=(1, 2, 3)))
        return float(per.mean()), per

    def levels_of(u: np.ndarray) -> list[float]:
        return [1.0] + [round(float(1 / (1 + np.exp(-v))), 4) for v in u]

    start = [float(v) for v in args.start.split(",")] if args.start else flow_sigmas(args.steps, 3.0)[1:-1].tolist()
    if len(start) != args.steps - 1:
        raise SystemExit(f"--start needs {args.steps - 1} levels (the first, 1, is fixed), not {len(start)}")
    u = np.log(np.array(start) / (1 - np.array(start)))
    best, per = distance(levels_of(u))
    trail = [{"levels": levels_of(u), "distance": best}]
    baselines = {}
    for name, shift in (("shift 3", 3.0), ("shift 1", 1.0)):
        d, _ = distance(flow_sigmas(args.steps, shift)[:-1].tolist())
        baselines[f"{args.steps} steps, {name}"] = d
    print(f"start {levels_of(u)}: {best:.2f}; baselines {baselines}", flush=True)
    for delta in (float(d) for d in args.deltas.split(",")):
        improved = True
        while improved:
            improved = False
            for i in range(len(u)):
                for sign in (1, -1):
                    v = u.copy()
                    v[i] += sign * delta
                    levels = levels_of(v)
                    if any(b >= a for a, b in itertools.pairwise(levels)):
                        continue
                    d, got = distance(levels)
                    if d < best:
                        best, per, u, improved = d, got, v, True
                        trail.append({"levels": levels, "distance": d, "delta": delta})
                        print(f"δ {delta}: {levels} {d:.2f}", flush=True)
                        break
    result = {
        "model": str(path),
        "reference": REFERENCE,
        "short": short,
        "levels": levels_of(u),
        "distance": best,
        "distance_median": float(np.median(per)),
        "groups": {
            "captions": float(per[:48].mean()),
            "skin tones": float(per[48:56].mean()),
            "posters": float(per[56:].mean()),
        },
        "baselines": baselines,
        "trail": trail,
        "prompts": len(prompts),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("levels", "distance", "distance_median", "groups", "baselines")}))


if __name__ == "__main__":
    main()
