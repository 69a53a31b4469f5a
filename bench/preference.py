"""The arena's votes, closed into a better model, with a known preference (issue 21):

1. **Battles.** A curated pool of prompts the voters care about — by default objects asked in a
   colour ("a teal kite, clip art, on a white background"), objects none of the eval's colour
   prompts use; with ``--property tone``, skin-tone prompts about the corpus's people and hands —
   each drawn ``--images`` times by the model to tune, registered under as many names with other
   seeds, so every battle is two of its own images (on-policy pairs, as DPO wants).
2. **Votes.** Simulated voters, through the arena's HTTP API with a simulated clock, who want
   one measurable thing: the colour the prompt asks for (:mod:`limner.eval.colour`), or the
   skin tone (the shipped skin-tone reader). One image right and one wrong is a vote for it
   (5 % of them flipped, as people slip); both right is a tie, both wrong "both bad". A
   too-fast voter is flagged and left out.
3. **Export** (`limner arena export`'s pairs) and **tune**: Diffusion-DPO, and the winners-only
   baseline, from the same pairs (`limner tune`).
4. **Eval.** The property on its own held-out prompts, and prompt and shape fidelity and the
   Fréchet distance on the eval's concept prompts, seeds 1000 and 2000, for the parent and both
   tuned models; each tuned model's change against the parent prompt by prompt, with a 95 %
   bootstrap interval over prompts.
5. **Arena.** The parent and the DPO model battle on the held-out property prompts (the same
   seed for both) before fresh voters; the property's board with its intervals.

    python bench/preference.py                                         # about 75 minutes on 2 CPU cores
    python bench/preference.py --work /tmp/pref --prompts 10 --votes 24 --voters 2 --steps 4 --limit 8 \
        --arena-votes 24 --out /tmp/pref.json                         # a quick look, a few minutes

The collection and the tuning keep their output in WORK (runs/preference-PROPERTY), the eval
and the arena their figures in OUT (bench/results/preference-PROPERTY.json); a phase whose output
is there is skipped, so a cut run goes on (drop a figure from OUT to measure it again). The first
skin-tone loop, run with the script of its day: bench/results/preference.json.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from limner.arena.battles import SimClock
from limner.engine import Engine
from limner.engine.registry import ModelSpec, shipped_models
from limner.engine.tones import named_tone
from limner.eval import metrics as M
from limner.eval.colour import ASKABLE, asked_colour, reads_as
from limner.eval.instruments import Instruments, load_instruments
from limner.eval.paired import bootstrap_change
from limner.eval.run import features, fidelity_hits, load_prompts
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
# things the corpus draws (each at least four times), none a person or a scene (the arena's
# "objects" board); every fourth is kept for the eval's colour prompts, the rest are the voters'
OBJECTS = [
    "star",
    "balloon",
    "umbrella",
    "fish",
    "bed",
    "bird",
    "hat",
    "butterfly",
    "house",
    "guitar",
    "kite",
    "apple",
    "bicycle",
    "bus",
    "train",
    "airplane",
    "rocket",
    "key",
    "bell",
    "tree",
    "cactus",
    "mushroom",
    "crab",
    "snail",
    "turtle",
    "frog",
    "owl",
    "cat",
    "dog",
    "horse",
    "rabbit",
    "whale",
    "octopus",
    "rose",
    "tulip",
    "lemon",
    "pear",
    "carrot",
    "candle",
    "crown",
    "dress",
    "backpack",
    "pencil",
    "ghost",
    "hammer",
    "phone",
    "camera",
    "drum",
    "trumpet",
    "violin",
    "chair",
    "door",
    "shield",
    "trophy",
    "ring",
    "alien",
    "ribbon",
    "teapot",
    "mug",
    "jar",
    "spoon",
    "envelope",
    "robot",
    "dragon",
]
EVAL_OBJECTS = OBJECTS[::4]
VOTER_OBJECTS = [o for o in OBJECTS if o not in EVAL_OBJECTS]
COLOUR_STYLES = ["flat emoji", "3D emoji", "clip art", "glossy colour icon", "cartoon icon"]
BOARD = {"colour": "objects", "tone": "people and skin tones"}


def colour_prompts(objects: list[str], n: int, seed: int) -> list[str]:
    """``n`` different prompts, each an object asked in a colour, the colours in turn: "a teal
    kite, clip art, on a white background"."""
    rng = random.Random(seed)
    shapes = [[(o, s) for o in objects for s in COLOUR_STYLES] for _ in ASKABLE]
    for options in shapes:
        rng.shuffle(options)
    if n > len(ASKABLE) * len(shapes[0]):
        raise SystemExit(f"{n} colour prompts asked: these objects make only {len(ASKABLE) * len(shapes[0])}")
    out = []
    for i in range(n):
        colour = ASKABLE[i % len(ASKABLE)]
        thing, style = shapes[i % len(ASKABLE)][i // len(ASKABLE)]
        out.append(f"{article(f'{colour} {thing}')}, {style}, on a white background")
    return out


def tone_prompts(corpus: Path, n: int, seed: int) -> list[str]:
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


def rightness(prop: str, instr: Instruments) -> Callable[[str, Image.Image], bool]:
    """Whether an image is what the voters want for its prompt."""
    if prop == "colour":
        return lambda prompt, image: (c := asked_colour(prompt)) is not None and reads_as(image, c)

    def tone(prompt: str, image: Image.Image) -> bool:
        asked = named_tone(prompt)
        return asked is not None and instr.tone_reader.read(image) == asked

    return tone


class Judge:
    """A simulated voter: one image right and one wrong is a vote for it (``SLIP`` of them the
    wrong way round); both right is a tie, both wrong "both bad"."""

    def __init__(self, right: Callable[[str, Image.Image], bool], rng: np.random.Generator):
        self.right, self.rng = right, rng

    def outcome(self, prompt: str, a: bytes, b: bytes) -> str:
        ra, rb = (self.right(prompt, Image.open(io.BytesIO(png))) for png in (a, b))
        if ra == rb:
            return "tie" if ra else "both_bad"
        pick = "a" if ra else "b"
        return pick if self.rng.random() >= SLIP else ("b" if pick == "a" else "a")


def run_arena(
    specs: list[ModelSpec],
    pools: list[tuple[str, int]],
    prompts: list[str],
    judge: Judge,
    work: Path,
    votes: int,
    voters: int,
    seed: int,
    board: str,
) -> dict:
    """A fresh arena in WORK with these models, a pool per (model, seed offset), ``voters`` honest
    voters casting ``votes`` votes in all through the HTTP API, and one too-fast voter (flagged,
    so off the boards and the export); returns the honest votes' outcomes, the overall and
    ``board`` boards and the arena (for the export)."""
    if work.exists():  # a cut run's arena: its pool and votes would count again
        shutil.rmtree(work)
    settings = Settings(
        data_dir=work,
        secret="preference-loop",
        cookie_secure=False,
        engine_factory=lambda: Engine(specs=specs),
        arena_battles_per_address=10**9,  # every simulated voter comes from the loopback
        arena_unvoted_hours=10**6,  # the simulation's clock starts a day ago: housekeeping keeps its battles
    )
    app = create_app(settings)
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    with TestClient(app):
        arena = app.state.arena
        t = time.time()
        for model, offset in pools:
            arena.seed_pool(prompts, [model], seed=offset)
        print(f"  pool: {len(prompts)} prompts × {len(pools)} in {time.time() - t:.0f} s", flush=True)
        clock = SimClock(time.time() - 86400)
        arena.clock = clock
        # re-pair at most once a second: a few dozen of these quick votes, as many as a live arena
        # takes in minutes (every vote re-read on every battle costs more than the vote at thousands)
        arena.pairing_refresh = 1.0

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

        t = time.time()
        for k in range(voters):
            tc = TestClient(app)
            for _vote in range(votes // voters + (k < votes % voters)):
                cast(tc, look=float(rng.uniform(2.5, 9.0)))
        bot = TestClient(app)
        for _ in range(30):
            cast(bot, look=float(rng.uniform(0.2, 0.6)), honest=False)  # too fast to have looked: flagged
        print(f"  {votes} votes in {time.time() - t:.0f} s", flush=True)
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
            for cat in ("overall", board)
        }
        return {"outcomes": counts, "boards": boards, "arena": arena}


SEEDS = (1000, 2000)
ARENA_SEED = 3000  # the arena's images are new ones, not the eval's drawn again


def measure(name: str, path: Path, instr, sets: dict, right, val_features: np.ndarray, have: dict) -> dict:
    """A model's per-prompt figures on seeds 1000 and 2000: the property (right or not) on its
    held-out prompts, prompt and shape fidelity (hit or not) on the concept prompts, and the
    Fréchet distance of those concept images to the real ones. What ``have`` holds already is
    kept, not drawn again (drop a key from the results to measure it anew)."""
    engine = Engine(specs=[ModelSpec(name, "limner", path)], batching=False)
    texts = [r["prompt"] for r in sets["concepts"]]
    row: dict = {}
    for seed in SEEDS:
        got = row[str(seed)] = dict(have.get(str(seed), {}))
        if "fidelity" not in got:
            images = generate_images(name, texts, [seed + i for i in range(len(texts))], instr, engine)
            got["fidelity"] = fidelity_hits(instr.evaluator, instr, images, texts).tolist()
            got["shape"] = fidelity_hits(instr.shape, instr, images, texts).tolist()
            got["frechet"] = M.frechet_distance(features(instr, images), val_features)
        if "property" not in got:
            asked = sets["property"]
            drawn = generate_images(name, asked, [seed + i for i in range(len(asked))], instr, engine)
            got["property"] = [bool(right(p, im)) for p, im in zip(asked, drawn, strict=True)]
    engine.close()
    return row


def summarise(evals: dict, rng: np.random.Generator) -> dict:
    """Each model's means per seed and each tuned model's paired change against the parent."""
    out: dict = {}
    for name, row in evals.items():
        figures = {
            key: [row[str(s)]["frechet"] if key == "frechet" else float(np.mean(row[str(s)][key])) for s in SEEDS]
            for key in ("property", "fidelity", "shape", "frechet")
        }
        if name != "parent" and "parent" in evals:
            base = evals["parent"]
            figures["change"] = {
                key: bootstrap_change(
                    np.array([np.subtract(row[str(s)][key], base[str(s)][key], dtype=float) for s in SEEDS]), rng
                )
                for key in ("property", "fidelity", "shape")
            }
            figures["change"]["frechet"] = float(
                np.mean([row[str(s)]["frechet"] - base[str(s)]["frechet"] for s in SEEDS])
            )
        out[name] = figures
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=None, help="weights folder to tune (default: the shipped default)")
    p.add_argument("--property", choices=("colour", "tone"), default="colour", help="what the voters want")
    p.add_argument("--work", type=Path, default=None, help="default: runs/preference-PROPERTY")
    p.add_argument("--prompts", type=int, default=600, help="voter prompts in the pool")
    p.add_argument("--images", type=int, default=4, help="images of each voter prompt, each under its own name")
    p.add_argument("--votes", type=int, default=6000, help="honest votes in the collection arena")
    p.add_argument("--voters", type=int, default=40)
    p.add_argument("--eval-prompts", type=int, default=256, help="held-out property prompts (colour)")
    p.add_argument("--arena-votes", type=int, default=1500, help="honest votes in the parent-vs-DPO arena")
    p.add_argument("--steps", type=int, default=400, help="tuning steps per method")
    p.add_argument("--beta", type=float, default=5000.0)
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="first N prompts of each eval set (a quick look)")
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--out", type=Path, default=None, help="default: bench/results/preference-PROPERTY.json")
    args = p.parse_args()
    args.work = args.work or Path(f"runs/preference-{args.property}")
    args.out = args.out or Path(f"bench/results/preference-{args.property}.json")

    parent = args.model or shipped_models()[-1].path
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    instr = load_instruments(args.corpus)
    right = rightness(args.property, instr)
    results: dict = json.loads(args.out.read_text()) if args.out.exists() else {}
    if results and results.get("property") != args.property:
        raise SystemExit(
            f"{args.out} holds another loop's figures (not --property {args.property}): give another --out"
        )
    results.update({"parent": str(parent), "property": args.property})
    results.setdefault("args", {k: str(v) for k, v in vars(args).items()})  # those of the run that began it

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))

    # 1–3: battles between the parent's own images, votes, export
    prefs = work / "prefs"
    if not (prefs / "pairs.jsonl").exists():
        print("collecting votes", flush=True)
        if args.property == "colour":
            prompts = colour_prompts(VOTER_OBJECTS, args.prompts, args.seed)
        else:
            prompts = tone_prompts(args.corpus, args.prompts, args.seed)
        names = [f"parent-{k}" for k in range(args.images)]
        got = run_arena(
            [ModelSpec(n, "limner", parent) for n in names],
            [(n, k * 500_000) for k, n in enumerate(names)],
            prompts,
            Judge(right, np.random.default_rng(args.seed)),
            work / "collect",
            args.votes,
            args.voters,
            args.seed,
            BOARD[args.property],
        )
        pairs = got["arena"].export_preference_pairs(prefs)
        exported = [json.loads(line) for line in (prefs / "pairs.jsonl").open()]
        results["collection"] = {
            "prompts": len(prompts),
            "images": args.images,
            "outcomes": got["outcomes"],
            "pairs": pairs,
            # how far the votes spread: (prompt, pair of names) slots with an honest vote, of all
            "slots_judged": len({(v.group, frozenset((v.model_a, v.model_b))) for v in got["arena"].votes()}),
            "slots": len(prompts) * len(names) * (len(names) - 1) // 2,
            "distinct_pairs": len({(r["prompt"], frozenset((r["winner_model"], r["loser_model"]))) for r in exported}),
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

    # 4: eval, every model on the same prompts and seeds
    sets = load_prompts(REPO / "bench" / "prompts", args.limit)
    if args.property == "colour":
        sets["property"] = colour_prompts(EVAL_OBJECTS, args.eval_prompts, args.seed + 1)[: args.limit]
    else:
        sets["property"] = [r["prompt"] for r in sets["skin_tones"]]
    val_features = None  # the real images' features, read only if some model is measured
    evals = results.setdefault("eval", {})
    for name, path in (("parent", parent), ("dpo", tuned["dpo"]), ("sft", tuned["sft"])):
        have = evals.get(name, {})
        if any(k not in have.get(str(s), {}) for s in SEEDS for k in ("property", "fidelity")):
            print(f"eval: {name}", flush=True)
            if val_features is None:
                val_features = features(instr, [Image.fromarray(a) for a in instr.val_images[:512]])
            evals[name] = measure(name, path, instr, sets, right, val_features, have)
            save()
    results["summary"] = summarise(evals, np.random.default_rng(args.seed))
    save()
    print(json.dumps(results["summary"], indent=1), flush=True)

    # 5: the parent against the DPO model in a fresh arena, on the held-out property prompts
    if "arena" not in results:
        print("arena: parent vs dpo", flush=True)
        specs = [ModelSpec("limner-parent", "limner", parent), ModelSpec("limner-dpo", "limner", tuned["dpo"])]
        got = run_arena(
            specs,
            [("limner-parent", ARENA_SEED), ("limner-dpo", ARENA_SEED)],
            sets["property"],
            Judge(right, np.random.default_rng(args.seed + 1)),
            work / "arena",
            args.arena_votes,
            args.voters,
            args.seed + 1,
            BOARD[args.property],
        )
        results["arena"] = {"outcomes": got["outcomes"], "boards": got["boards"]}
        save()
        print(json.dumps(results["arena"], indent=1), flush=True)


if __name__ == "__main__":
    main()
