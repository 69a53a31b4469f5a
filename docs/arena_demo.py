"""Arena demo: seed a curated pool, let simulated voters fill the board through the real HTTP API,
then screenshot the arena and the leaderboard in headless Chromium.

    .venv/bin/python docs/arena_demo.py                     # shipped models, padded with tiny ones
    .venv/bin/python docs/arena_demo.py --models models.toml --prompts 48 --voters 20

1. Models: every model ``limner models`` would list (the shipped ``weights/limner-*`` and those
   of ``--models``); when that is fewer than three, untrained tiny built-in models (seeded
   differently) fill up to three, so the demo runs on a fresh clone.
2. The pool: a seeded mix of bench/prompts (concepts, typography, skin tones), one image per
   (prompt, model), made by ``Arena.seed_pool`` — what ``limner arena seed-pool`` does.
3. Votes: honest voters fetch each battle's two images over HTTP and judge them blind — with the
   prompt-fidelity evaluator (``weights/evaluator.safetensors`` or
   ``runs/evaluator/evaluator.safetensors``) when one exists, else with a hidden per-model,
   per-category strength looked up from the image bytes — through a noisy Bradley–Terry choice.
   One voter votes within half a second and one always picks A; both end up flagged.
   The arena's clock is simulated, so voters "look" for a few seconds without the demo waiting.
4. Screenshots (docs/screenshots/arena-*.png): a battle before the vote, the reveal, the overall
   and the text-rendering leaderboards at desktop size, and the battle at phone size (390×844).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from fastapi.testclient import TestClient
from sqlalchemy import select

from limner.arena.battles import SimClock
from limner.arena.categories import categorize
from limner.engine import Engine
from limner.engine.registry import ModelSpec
from limner.server.app import create_app
from limner.server.settings import Settings
from limner.store.db import ArenaImage, ArenaVoter, StoredFile

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}


# -- models and prompts ----------------------------------------------------------------------------


def tiny_model(path: Path, seed: int) -> Path:
    """An untrained tiny built-in model (zero-initialised layers filled in, so it paints more than
    flat grey)."""
    from limner.model.checkpoint import save_weights
    from limner.model.denoiser import PRESETS, Denoiser
    from limner.model.upsampler import UPSAMPLER_PRESETS, Upsampler

    torch.manual_seed(seed)
    denoiser, upsampler = Denoiser(PRESETS["tiny"]), Upsampler(UPSAMPLER_PRESETS["tiny"])
    with torch.no_grad():
        for p in [*denoiser.parameters(), *upsampler.parameters()]:
            if not p.any():
                p.normal_(0, 0.1)
    save_weights(path / "denoiser.safetensors", denoiser, "denoiser")
    save_weights(path / "upsampler.safetensors", upsampler, "upsampler")
    return path


def model_specs(models_file: Path | None, work: Path, at_least: int = 3) -> list[ModelSpec]:
    specs = list(Engine(models_file=models_file).specs.values())
    for k in range(at_least - len(specs)):
        name = f"tiny-{'abc'[k]}"
        specs.append(ModelSpec(name, "limner", tiny_model(work / name, seed=k), defaults={"num_inference_steps": 8}))
    return specs


def demo_prompts(n: int, seed: int) -> list[str]:
    """A seeded third each of concepts, typography and skin-tone prompts."""
    rng = np.random.default_rng(seed)
    out: list[str] = []
    for k, name in enumerate(("concepts", "typography", "skin_tones")):
        rows = [json.loads(line)["prompt"] for line in (REPO / "bench" / "prompts" / f"{name}.jsonl").open()]
        take = n // 3 + (k < n % 3)
        out += [rows[i] for i in sorted(rng.choice(len(rows), take, replace=False))]
    return out


# -- judges ----------------------------------------------------------------------------------------


def find_evaluator() -> Path | None:
    for path in (REPO / "weights" / "evaluator.safetensors", REPO / "runs" / "evaluator" / "evaluator.safetensors"):
        if path.exists():
            return path
    return None


class EvaluatorJudge:
    """Prompt fidelity: cosine similarity of the evaluator's image and caption embeddings."""

    def __init__(self, path: Path):
        from limner.eval.evaluator import Evaluator

        self.evaluator, _ = Evaluator.load(path)
        self.cache: dict[str, torch.Tensor] = {}

    def score(self, prompt: str, png: bytes) -> float:
        import io

        from PIL import Image

        from limner.eval.evaluator import pooled_captions, to_eval_tensor

        if prompt not in self.cache:
            self.cache[prompt] = self.evaluator.embed_texts(pooled_captions([prompt]))[0]
        with torch.no_grad():
            image = self.evaluator.embed_images(to_eval_tensor([Image.open(io.BytesIO(png))]))[0]
        return 8.0 * float(image @ self.cache[prompt])  # similarities differ by hundredths: spread them


class HiddenStrengthJudge:
    """Each model has a hidden strength (log-10 units) per category; the image bytes say which
    model drew it (the demo made the pool, so it knows) — the voter never sees a name."""

    def __init__(self, models: list[str], by_digest: dict[str, str], seed: int):
        rng = np.random.default_rng(seed)
        base = np.linspace(0.35, -0.35, len(models))  # first model best: trained weights lead the list
        self.strength = {
            (m, c): base[k] + rng.normal(0, 0.2)
            for k, m in enumerate(models)
            for c in ("text rendering", "people and skin tones", "objects", "scenes")
        }
        self.by_digest = by_digest

    def score(self, prompt: str, png: bytes) -> float:
        model = self.by_digest[hashlib.sha256(png).hexdigest()]
        cats = [c for c in categorize(prompt) if c != "overall"]
        return float(np.mean([self.strength[(model, c)] for c in cats]))


def choose(score_a: float, score_b: float, rng: np.random.Generator, bias: float) -> str:
    """A noisy Bradley–Terry voter: A with probability 1/(1 + 10^(b − a − bias)); a tie when the
    two are close and a coin says so; "both bad" now and then."""
    if rng.random() < 0.04:
        return "both_bad"
    d = score_a - score_b + bias
    if abs(d) < 0.08 and rng.random() < 0.5:
        return "tie"
    return "a" if rng.random() < 1 / (1 + 10 ** (-d)) else "b"


# -- the simulation --------------------------------------------------------------------------------


def cast(tc: TestClient, clock: SimClock, judge, rng: np.random.Generator, look: float, bias: float = 0.0, side=None):
    battle = tc.post("/arena/api/battles", json={}).json()
    images = [tc.get(battle["images"][s]).content for s in ("a", "b")]
    clock.advance(look)
    outcome = side or choose(
        judge.score(battle["prompt"], images[0]), judge.score(battle["prompt"], images[1]), rng, bias
    )
    r = tc.post("/arena/api/votes", json={"battle_id": battle["id"], "token": battle["token"], "outcome": outcome})
    r.raise_for_status()


def simulate(app, settings: Settings, prompts: list[str], voters: int, votes_each: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with TestClient(app) as main:
        arena = app.state.arena
        started = time.time()
        made = arena.seed_pool(
            prompts, progress=lambda _, done, total: print(f"\r  pool {done}/{total}", end="", flush=True)
        )
        print(
            f"\r  pool: {made} images for {len(prompts)} prompts × {len(arena.models())} models "
            f"in {time.time() - started:.0f} s"
        )
        clock = SimClock(time.time() - 86400)  # yesterday: the browser voter later starts a fresh day
        arena.clock = clock
        models = arena.models()
        evaluator = find_evaluator()
        if evaluator is not None:
            judge = EvaluatorJudge(evaluator)
            print(f"  judge: prompt-fidelity evaluator {evaluator.relative_to(REPO)}")
        else:
            with arena.db.session() as s:
                query = select(ArenaImage.model, StoredFile.path).join(StoredFile, StoredFile.id == ArenaImage.file_id)
                by_digest = {hashlib.sha256(Path(p).read_bytes()).hexdigest(): m for m, p in s.execute(query)}
            judge = HiddenStrengthJudge(models, by_digest, seed)
            print("  judge: hidden per-model strengths (no evaluator weights found)")
        started = time.time()
        for v in range(voters):
            tc = TestClient(app)  # a browser of its own: its own voter cookie
            bias = rng.normal(0, 0.05)  # a slight lean to one side, as people have
            for _ in range(votes_each):
                cast(tc, clock, judge, rng, look=rng.uniform(2.5, 9.0), bias=bias)
            print(f"\r  voters: {v + 1}/{voters}", end="")
        bot, lazy = TestClient(app), TestClient(app)
        for _ in range(12):
            cast(bot, clock, judge, rng, look=rng.uniform(0.2, 0.6))  # too fast to have looked
        for _ in range(24):
            cast(lazy, clock, judge, rng, look=rng.uniform(2.0, 5.0), side="a")  # always A
        print(f"\r  votes: {voters} voters × {votes_each} + 12 too fast + 24 always-A in {time.time() - started:.0f} s")
        with arena.db.session() as s:
            for row in s.scalars(select(ArenaVoter).where(ArenaVoter.flagged)):
                print(f"  flagged {row.id[:14]}…: {row.reason}")
        board = main.get("/arena/api/leaderboard").json()
        print(f"  overall board ({board['votes']} votes counted):")
        for st in board["standings"]:
            print(f"    {st['rank']}. {st['model']:<14} {st['rating']:7.1f}  [{st['lower']:.0f}, {st['upper']:.0f}]")


# -- screenshots -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(page, js: str, timeout: float = 30.0) -> None:
    """Poll ``js`` (a function of no arguments) in the page: ``page.wait_for_function`` evaluates
    a string, which the pages' Content-Security-Policy (no 'unsafe-eval') rightly refuses."""
    deadline = time.time() + timeout
    while not page.evaluate(js):
        if time.time() > deadline:
            raise TimeoutError(js)
        time.sleep(0.05)


def screenshots(settings: Settings, out: Path) -> None:
    import uvicorn
    from playwright.sync_api import sync_playwright

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    both_loaded = "() => ['img-a', 'img-b'].every((i) => document.getElementById(i).naturalWidth > 0)"
    out.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=DESKTOP)
            page.goto(f"{base}/arena")
            wait_until(page, both_loaded)
            page.screenshot(path=out / "arena-battle.png", full_page=True)
            page.get_by_role("button", name="A is better").click()
            wait_until(page, "() => document.getElementById('name-a').textContent.length > 0")
            page.screenshot(path=out / "arena-reveal.png", full_page=True)
            page.goto(f"{base}/arena/leaderboard")
            page.screenshot(path=out / "arena-leaderboard.png", full_page=True)
            page.goto(f"{base}/arena/leaderboard?category=text%20rendering")
            page.screenshot(path=out / "arena-leaderboard-text.png", full_page=True)
            phone = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
            phone.goto(f"{base}/arena")
            wait_until(phone, both_loaded)
            phone.screenshot(path=out / "arena-phone.png", full_page=True)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    for name in sorted(out.glob("arena-*.png")):
        print(f"  {name.relative_to(REPO) if name.is_relative_to(REPO) else name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=Path, help="a models.toml naming more models")
    ap.add_argument("--prompts", type=int, default=36, help="prompts in the curated pool")
    ap.add_argument("--voters", type=int, default=12, help="honest simulated voters")
    ap.add_argument("--votes-each", type=int, default=45)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", type=Path, help="keep the arena's database and images here (default: a temp dir)")
    ap.add_argument("--screenshots", type=Path, default=REPO / "docs" / "screenshots")
    ap.add_argument("--no-screenshots", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))

    with tempfile.TemporaryDirectory(prefix="limner-arena-demo-") as tmp:
        work = Path(tmp)
        specs = model_specs(args.models, work / "weights")
        print(f"models: {', '.join(s.name for s in specs)}")
        settings = Settings(
            data_dir=args.data_dir or work / "data",
            secret="arena-demo",
            cookie_secure=False,  # plain http on 127.0.0.1
            engine_factory=lambda: Engine(specs=specs),
            arena_battles_per_address=10**9,  # every simulated voter comes from the loopback
            arena_unvoted_hours=10**6,  # the simulation's clock starts a day ago: housekeeping keeps its battles
        )
        simulate(
            create_app(settings),
            settings,
            demo_prompts(args.prompts, args.seed),
            args.voters,
            args.votes_each,
            args.seed,
        )
        if not args.no_screenshots:
            print("screenshots:")
            screenshots(settings, args.screenshots)


if __name__ == "__main__":
    main()
