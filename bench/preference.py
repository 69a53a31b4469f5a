"""The arena's votes, closed into a better model, with a known preference (issue 21):

1. **Battles.** A curated pool of skin-tone prompts drawn from the corpus's people and hands
   (none of the eval's fifteen concepts), each drawn twice by the model to tune — registered
   under two names, the second with other seeds — so every battle is two of its own images.
2. **Votes.** Simulated voters, through the arena's HTTP API with a simulated clock, who want
   one measurable thing: the skin tone the prompt asks for, read by the shipped skin-tone
   reader. One image right and one wrong is a vote for it (5 % of them flipped, as people
   slip); both right is a tie, both wrong "both bad". A too-fast voter is flagged and left out.
3. **Export** (`limner arena export`'s pairs) and **tune**: Diffusion-DPO, and the winners-only
   baseline, from the same pairs (`limner tune`).
4. **Eval.** Skin-tone accuracy on the eval's own skin-tone prompts (75, seeds 1000 and 2000),
   prompt and shape fidelity and Fréchet distance on the concept prompts (seed 1000), for the
   parent and both tuned models, as bench/sampling.py measures them.
5. **Arena.** The parent and the DPO model battle on the eval's skin-tone prompts (same seeds
   for both) before fresh voters; the "people and skin tones" board with its intervals.

    python bench/preference.py --work runs/preference                 # about an hour on 2 CPU cores
    python bench/preference.py --work /tmp/pref --prompts 10 --votes 24 --voters 2 --steps 4 --limit 8 \
        --out /tmp/pref.json                                          # a quick look, a few minutes

Every phase keeps its output in WORK and is skipped when it is there, so a cut run goes on.
Figures: bench/results/preference.json.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from limner.arena.battles import SimClock
from limner.engine import Engine
from limner.engine.registry import ModelSpec, shipped_models
from limner.engine.tones import named_tone
from limner.eval import metrics as M
from limner.eval.instruments import Instruments, load_instruments
from limner.eval.run import features, fidelity, load_prompts
from limner.eval.sources import generate_images
from limner.eval.tone import TONES
from limner.server.app import create_app
from limner.server.settings import Settings
from limner.tune import TuneConfig
from limner.tune import main as tune
from limner.typography.words import article

REPO = Path(__file__).resolve().parent.parent
STYLES = ["flat style", "glossy colour icon", "3D illustration", "cartoon emoji", "outlined flat emoji"]
SLIP = 0.05  # share of decisive votes a voter gets the wrong way round


def voter_prompts(corpus: Path, n: int, seed: int) -> list[str]:
    """Skin-tone prompts about the corpus's people and hands, none of the eval's concepts."""
    eval_concepts = {r["concept"].lower() for r in load_prompts(REPO / "bench" / "prompts", None)["skin_tones"]}
    with np.load(corpus / "trainset-64-train.npz") as z:
        meta = json.loads(z["meta"].tobytes())
    toned = zip(meta["names"], meta["tones"], strict=True)
    names = sorted({nm.lower() for nm, t in toned if len(t) == 1 and "skin" not in nm} - eval_concepts)
    rng = random.Random(seed)
    out = []
    for i in range(n):
        name, tone, style = rng.choice(names), TONES[i % len(TONES)], rng.choice(STYLES)
        out.append(
            rng.choice(
                [
                    f"{name} emoji with {tone} skin tone, {style}",
                    f"{article(name)} with {tone} skin tone, {style}",
                    f"{name}, {tone} skin tone, {style}",
                ]
            )
        )
    return out


class ToneJudge:
    """A voter who wants the asked skin tone: the shipped reader decides."""

    def __init__(self, instr: Instruments, rng: np.random.Generator):
        self.reader, self.rng = instr.tone_reader, rng

    def right(self, prompt: str, png: bytes) -> bool:
        import io

        asked = named_tone(prompt)
        return asked is not None and self.reader.read(Image.open(io.BytesIO(png))) == asked

    def outcome(self, prompt: str, a: bytes, b: bytes) -> str:
        ra, rb = self.right(prompt, a), self.right(prompt, b)
        if ra == rb:
            return "tie" if ra else "both_bad"
        pick = "a" if ra else "b"
        return pick if self.rng.random() >= SLIP else ("b" if pick == "a" else "a")


def run_arena(
    specs: list[ModelSpec],
    pools: list[tuple[str, int]],
    prompts: list[str],
    instr,
    work: Path,
    votes: int,
    voters: int,
    seed: int,
) -> dict:
    """A fresh arena in WORK with these models, a pool per (model, seed offset), ``voters`` honest
    voters casting ``votes`` votes in all through the HTTP API, and one too-fast voter (flagged,
    so off the boards and the export); returns the honest votes' outcomes, the boards and the
    arena (for the export)."""
    settings = Settings(
        data_dir=work, secret="preference-loop", cookie_secure=False, engine_factory=lambda: Engine(specs=specs)
    )
    app = create_app(settings)
    rng = np.random.default_rng(seed)
    judge = ToneJudge(instr, rng)
    counts: dict[str, int] = {}
    with TestClient(app):
        arena = app.state.arena
        t = time.time()
        for model, offset in pools:
            arena.seed_pool(prompts, [model], seed=offset)
        print(f"  pool: {len(prompts)} prompts × {len(pools)} in {time.time() - t:.0f} s", flush=True)
        clock = SimClock(time.time() - 86400)
        arena.clock = clock
        arena.pairing_refresh = 0.0  # pair on every vote so far, as a live arena does over its slower votes

        def cast(tc: TestClient, look: float, honest: bool = True) -> None:
            battle = tc.post("/arena/api/battles", json={}).json()
            a, b = (tc.get(battle["images"][s]).content for s in ("a", "b"))
            clock.advance(look)
            outcome = judge.outcome(battle["prompt"], a, b)
            if honest:
                counts[outcome] = counts.get(outcome, 0) + 1
            r = tc.post(
                "/arena/api/votes", json={"battle_id": battle["id"], "token": battle["token"], "outcome": outcome}
            )
            r.raise_for_status()

        for _ in range(voters):
            tc = TestClient(app)
            for _vote in range(votes // voters):
                cast(tc, look=float(rng.uniform(2.5, 9.0)))
        bot = TestClient(app)
        for _ in range(30):
            cast(bot, look=float(rng.uniform(0.2, 0.6)), honest=False)  # too fast to have looked: flagged
        boards = {
            cat: [
                {
                    "model": s.model,
                    "rating": round(s.rating, 1),
                    "lower": round(s.lower, 1),
                    "upper": round(s.upper, 1),
                    "rank": s.rank,
                }
                for s in arena.board(cat, rounds=400)
            ]
            for cat in ("overall", "people and skin tones")
        }
        return {"outcomes": counts, "boards": boards, "arena": arena}


def measure(name: str, path: Path, instr, sets: dict, val_features: np.ndarray, concepts: bool = True) -> dict:
    """A model's figures as bench/sampling.py takes them: skin tone with seeds 1000 and 2000,
    and (``concepts``) prompt and shape fidelity and Fréchet distance with seed 1000."""
    spec = ModelSpec(name, "limner", path)
    engine = Engine(specs=[spec], batching=False)
    tones = sets["skin_tones"]
    row: dict = {}
    if concepts:
        texts = [r["prompt"] for r in sets["concepts"]]
        images = generate_images(name, texts, [1000 + i for i in range(len(texts))], instr, engine)
        row["fidelity"] = fidelity(instr.evaluator, instr, images, texts)
        row["shape"] = fidelity(instr.shape, instr, images, texts)
        row["frechet"] = M.frechet_distance(features(instr, images), val_features)
    for seed in (1000, 2000):
        drawn = generate_images(
            name, [r["prompt"] for r in tones], [seed + i for i in range(len(tones))], instr, engine
        )
        read = [instr.tone_reader.read(im) for im in drawn]
        row[f"skin_tone_{seed}"] = float(np.mean([r == t["tone"] for r, t in zip(read, tones, strict=True)]))
    engine.close()
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=None, help="weights folder to tune (default: the shipped default)")
    p.add_argument("--work", type=Path, default=Path("runs/preference"))
    p.add_argument("--prompts", type=int, default=240, help="voter prompts in the pool")
    p.add_argument("--votes", type=int, default=720, help="honest votes in the collection arena")
    p.add_argument("--voters", type=int, default=12)
    p.add_argument("--steps", type=int, default=200, help="tuning steps per method")
    p.add_argument("--beta", type=float, default=2000.0)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="first N prompts of each eval set (a quick look)")
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--out", type=Path, default=Path("bench/results/preference.json"))
    args = p.parse_args()

    parent = args.model or shipped_models()[-1].path
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    instr = load_instruments(args.corpus)
    results: dict = json.loads(args.out.read_text()) if args.out.exists() else {}
    results.update({"parent": str(parent), "args": {k: str(v) for k, v in vars(args).items()}})

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))

    # 1–3: battles between the parent's own images, votes, export
    prefs = work / "prefs"
    if not (prefs / "pairs.jsonl").exists():
        print("collecting votes", flush=True)
        prompts = voter_prompts(args.corpus, args.prompts, args.seed)
        specs = [ModelSpec("parent-a", "limner", parent), ModelSpec("parent-b", "limner", parent)]
        got = run_arena(
            specs,
            [("parent-a", 0), ("parent-b", 500_000)],
            prompts,
            instr,
            work / "collect",
            args.votes,
            args.voters,
            args.seed,
        )
        results["collection"] = {
            "prompts": len(prompts),
            "outcomes": got["outcomes"],
            "pairs": got["arena"].export_preference_pairs(prefs),
        }
        save()
        print(f"  {results['collection']}", flush=True)

    # 3: tune, both methods from the same pairs
    tuned = {}
    for method in ("dpo", "sft"):
        run = work / f"tune-{method}"
        if not (run / "ema.safetensors").exists() or not (run / "history.jsonl").exists():
            print(f"tuning: {method}", flush=True)
            cfg = TuneConfig(
                pairs=str(prefs),
                init=str(parent),
                out=str(run),
                method=method,
                steps=args.steps,
                beta=args.beta,
                lr=args.lr,
                seed=args.seed,
            )
            r = tune(cfg)
            results.setdefault("tuning", {})[method] = {k: v for k, v in r.items() if k != "history"}
            save()
        folder = work / f"limner-{method}"
        folder.mkdir(exist_ok=True)
        for src, dst in (
            (run / "ema.safetensors", "denoiser.safetensors"),
            (parent / "upsampler.safetensors", "upsampler.safetensors"),
            (parent / "sampling.json", "sampling.json"),  # drawn as the parent draws
        ):
            if src.exists() and not (folder / dst).exists():
                (folder / dst).symlink_to(src.resolve())
        tuned[method] = folder

    # 4: eval
    sets = load_prompts(REPO / "bench" / "prompts", args.limit)
    val_features = features(instr, [Image.fromarray(a) for a in instr.val_images[:512]])
    evals = results.setdefault("eval", {})
    reference = REPO / "bench" / "results" / "sampling.json"
    if "parent" not in evals and args.model is None and args.limit is None and reference.exists():
        # the shipped model at its default settings, two seeds, measured by bench/sampling.py the same way
        ref = json.loads(reference.read_text())
        if ref.get("model") == str(parent) and {"ref", "ref-seed2"} <= ref.keys():
            keys = ("fidelity", "shape", "frechet", "skin_tone")
            evals["parent"] = {
                "seed 1000": {k: ref["ref"][k] for k in keys},
                "seed 2000": {k: ref["ref-seed2"][k] for k in keys},
            }
            evals["parent"]["source"] = "bench/results/sampling.json (ref, ref-seed2)"
    for name, path, full in (("parent", parent, True), ("dpo", tuned["dpo"], True), ("sft", tuned["sft"], False)):
        if name not in evals:
            print(f"eval: {name}", flush=True)
            evals[name] = measure(name, path, instr, sets, val_features, concepts=full)
            save()
            print(f"  {evals[name]}", flush=True)

    # 5: the parent against the DPO model in a fresh arena, on the eval's skin-tone prompts
    if "arena" not in results:
        print("arena: parent vs dpo", flush=True)
        specs = [ModelSpec("limner-parent", "limner", parent), ModelSpec("limner-dpo", "limner", tuned["dpo"])]
        prompts = [r["prompt"] for r in sets["skin_tones"]]
        got = run_arena(
            specs,
            [("limner-parent", 1000), ("limner-dpo", 1000)],
            prompts,
            instr,
            work / "arena",
            args.votes,
            args.voters,
            args.seed + 1,
        )
        results["arena"] = {"outcomes": got["outcomes"], "boards": got["boards"]}
        save()
        print(json.dumps(results["arena"], indent=1), flush=True)


if __name__ == "__main__":
    main()
