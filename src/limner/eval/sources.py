"""The images ``limner eval`` measures: a model's, generated for each prompt set through the engine
(and its speed), and the held-out real images that are the ceiling."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

from limner.eval.instruments import Instruments, machine_name, pooled_text
from limner.eval.tone import TONELESS_STYLES, drawn_tones

PROMPT_SETS = ("concepts", "typography", "skin_tones")


def generate_images(
    model: str,
    prompts: list[str],
    seeds: list[int],
    instr: Instruments,
    engine=None,
    batch: int = 8,
    progress=None,
    typography: str = "auto",
) -> list[Image.Image]:
    if model == "noise":
        rng = np.random.default_rng(0)
        return [Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)) for _ in prompts]
    if model == "nearest-train":
        q = pooled_text(instr, prompts)
        keys = pooled_text(instr, instr.train_captions)
        nearest = (q @ keys.T).argmax(1).tolist()
        return [Image.fromarray(instr.train_images[i]).resize((256, 256), Image.Resampling.LANCZOS) for i in nearest]
    from limner.engine import Engine, GenerationRequest

    engine = engine or Engine()
    requests = [
        GenerationRequest(p, seed=s, model=model, typography=typography) for p, s in zip(prompts, seeds, strict=True)
    ]
    # at most ``ahead`` waiting at a time: enough to fill every batch, within the engine's bounded queue
    ahead = max(batch * 4, 1)
    futures = [engine.submit(r) for r in requests[:ahead]]
    images = []
    for i in range(len(requests)):
        images.append(futures[i].result()[0].image)
        if i + ahead < len(requests):
            futures.append(engine.submit(requests[i + ahead]))
        if progress:
            progress("generating", i + 1, len(requests))
    return images


def measure_speed(model: str, engine, repeats: int = 2) -> dict:
    """Seconds per image and images per second at batch 1 and 4, on this machine."""
    from limner.engine import GenerationRequest

    out: dict = {"machine": machine_name()}
    engine.generate(GenerationRequest("warm-up", seed=0, model=model))
    for n in (1, 4):
        t = time.perf_counter()
        for r in range(repeats):
            engine.generate(GenerationRequest("a red apple, 3D render", n=n, seed=r, model=model))
        dt = (time.perf_counter() - t) / repeats
        out[f"batch{n}"] = {
            "seconds_per_call": round(dt, 3),
            "seconds_per_image": round(dt / n, 3),
            "images_per_second": round(n / dt, 3),
        }
    return out


def real_sets(corpus: Path, limit: int | None) -> tuple[dict[str, list[dict]], dict[str, list[Image.Image]]]:
    """Validation records standing in for the three prompt sets: images with their own caption,
    typography scenes with their exact strings, and emoji that draw exactly one skin tone (the tone
    drawn, :func:`limner.eval.tone.drawn_tones`; line icons, which draw none, left out)."""
    from limner.data.shards import iter_records, shard_paths

    n = limit or 10**9
    sets: dict[str, list[dict]] = {k: [] for k in PROMPT_SETS}
    images: dict[str, list[Image.Image]] = {k: [] for k in PROMPT_SETS}
    for rec in iter_records(shard_paths(corpus, "val")):
        tones = drawn_tones(rec.meta)
        if len(sets["concepts"]) < n:
            sets["concepts"].append({"id": rec.key, "prompt": rec.meta["captions"][0]})
            images["concepts"].append(rec.image())
        if len(tones) == 1 and len(sets["skin_tones"]) < n and rec.meta["style"] not in TONELESS_STYLES:
            sets["skin_tones"].append({"id": rec.key, "prompt": rec.meta["captions"][0], "tone": tones[0]})
            images["skin_tones"].append(rec.image())
    for rec in iter_records(shard_paths(corpus, "val", "typography")):
        if len(sets["typography"]) >= n:
            break
        texts = [s["text"] for s in rec.meta["spans"]]
        sets["typography"].append(
            {
                "id": rec.key,
                "prompt": rec.meta["captions"][0],
                "text": texts,
                "words": [w for t in texts for w in t.split()],
            }
        )
        images["typography"].append(rec.image())
    return sets, images
