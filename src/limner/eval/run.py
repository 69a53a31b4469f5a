"""``limner eval``: generate for the benchmark prompt sets and measure, the same way every time.

Besides the model under test, three reference "models" can be evaluated by name:
  real           held-out validation images with their own captions (the ceiling)
  noise          uniform random images (the floor)
  nearest-train  for each prompt, the training image whose caption is nearest (what pure
                 memorisation would score)
Their fidelity and Fréchet numbers are recomputed in every report for context.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from limner.engine.compute import on_compute
from limner.eval import metrics as M
from limner.eval.evaluator import Evaluator, to_eval_tensor
from limner.eval.instruments import Instruments, load_instruments, machine_name, pooled_text
from limner.eval.report import summary, write_report
from limner.eval.sources import PROMPT_SETS, generate_images, measure_speed, real_sets

REFERENCE_MODELS = ("real", "noise", "nearest-train")


def load_prompts(prompts_dir: Path, limit: int | None) -> dict[str, list[dict]]:
    sets = {}
    for name in PROMPT_SETS:
        path = Path(prompts_dir) / f"{name}.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        sets[name] = rows[:limit] if limit else rows
    return sets


# -- metrics ----------------------------------------------------------------------------------------


@on_compute
def fidelity_hits(evaluator: Evaluator, instr: Instruments, images: list, texts: list[str], k: int = 32) -> np.ndarray:
    """Per image, whether ``evaluator`` (``instr.evaluator`` for prompt fidelity, ``instr.shape``
    for shape fidelity) ranks its own text first among k: (N,) bool."""
    with torch.no_grad():
        img = torch.cat(
            [evaluator.embed_images(to_eval_tensor(images[i : i + 256])) for i in range(0, len(images), 256)]
        )
        txt = evaluator.embed_texts(pooled_text(instr, texts))
    return M.retrieval_hits(img.numpy(), txt.numpy(), k=k)


def fidelity(evaluator: Evaluator, instr: Instruments, images: list, texts: list[str], k: int = 32) -> float:
    """Top-1 retrieval of each image's own text among k (the share :func:`fidelity_hits` counts)."""
    return float(fidelity_hits(evaluator, instr, images, texts, k).mean()) if len(images) >= 2 else float("nan")


@on_compute
def features(instr: Instruments, images: list) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate(
            [instr.evaluator.features(to_eval_tensor(images[i : i + 256])).numpy() for i in range(0, len(images), 256)]
        )


def ocr_scores(
    images: list[Image.Image], rows: list[dict], workers: int = 2, readings: int | None = None
) -> list[dict]:
    from limner.eval.ocr import read_texts

    with ThreadPoolExecutor(workers) as pool:
        texts = list(
            pool.map(
                lambda pair: read_texts(pair[0], targets=pair[1]["words"], readings=readings),
                zip(images, rows, strict=True),
            )
        )
    out = []
    for variants, row in zip(texts, rows, strict=True):
        best = max(variants, key=lambda t: M.word_accuracy(row["words"], t))
        wa = M.word_accuracy(row["words"], best)
        whole = min(M.normalized_edit_distance(" ".join(row["text"]), t) for t in variants)
        out.append(
            {
                "id": row["id"],
                "word_accuracy": wa,
                "ned": M.span_edit_distance(row["text"], variants),
                "ned_whole": whole,
                "ocr": best.strip()[:200],
            }
        )
    return out


def memorised(instr: Instruments, images: list) -> tuple[float, list[float]]:
    sigs = np.stack(
        [M.copy_signature(np.asarray(im.convert("RGB").resize((64, 64), Image.Resampling.BOX))) for im in images]
    )
    _, sims = M.nearest(sigs, instr.train_signatures)
    return float((sims >= instr.copy_threshold).mean()), sims.tolist()


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _finite(obj):
    """NaN (a metric over too few images) becomes null, so metrics.json stays valid JSON."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


# Bump when a metric's definition changes: cached reference numbers are keyed on it.
# 5: shape fidelity (the colour-blind evaluator) beside prompt fidelity.
# 6: skin tone read by the calibrated reader (limner.eval.tone), real emoji scored on the tone
#    drawn; the ITA reading stays in metrics.json as skin_tone.ita_accuracy.
METRICS_VERSION = 6


def measure(
    model: str,
    instr: Instruments,
    sets: dict[str, list[dict]],
    corpus: Path,
    limit: int | None,
    engine=None,
    progress=None,
    typography: str = "auto",
    seed: int = 1000,
) -> tuple[dict, dict, dict, list, list]:
    """Images for every prompt set and every metric on them (speed aside)."""
    n_val = min(len(instr.val_images), max(64, limit or 512))
    val_imgs = [Image.fromarray(a) for a in instr.val_images[:n_val]]
    val_caps = instr.val_captions[:n_val]
    images: dict[str, list[Image.Image]] = {}
    if model == "real":  # the ceiling: held-out real images with their own captions and texts
        sets, images = real_sets(Path(corpus), limit)
    for name, rows in sets.items():
        if name not in images:
            prompts = [r["prompt"] for r in rows]
            seeds = [seed + i for i in range(len(prompts))]
            images[name] = generate_images(
                model, prompts, seeds, instr, engine, progress=progress, typography=typography
            )
    m: dict = {
        "model": model,
        "limit": limit,
        "typography": typography,
        "seed": seed,
        "prompt_sets": {k: len(v) for k, v in sets.items()},
        "evaluator": str(instr.evaluator_path),
        "shape_evaluator": str(instr.shape_path),
        "copy_threshold": round(instr.copy_threshold, 4),
    }
    concept_texts = [r["prompt"] for r in sets["concepts"]]
    hits = {}
    for section, evaluator in (("fidelity", instr.evaluator), ("shape", instr.shape)):
        hits[section] = fidelity_hits(evaluator, instr, images["concepts"], concept_texts)
        m[section] = {
            "generated": float(hits[section].mean()) if len(hits[section]) >= 2 else float("nan"),
            "real_ceiling": fidelity(evaluator, instr, val_imgs, val_caps),
            "chance": 1 / 32,
        }
        m[section]["ratio"] = m[section]["generated"] / max(m[section]["real_ceiling"], 1e-9)
    half = n_val // 2
    f_val = features(instr, val_imgs)
    f_gen = features(instr, images["concepts"])
    m["frechet"] = {
        "generated_vs_real": M.frechet_distance(f_gen, f_val),
        "real_halves_floor": M.frechet_distance(f_val[:half], f_val[half:]),
        "noise_vs_real": M.frechet_distance(features(instr, generate_images("noise", concept_texts, [], instr)), f_val),
    }
    # noise holds no words, so no reading stops early: one reading is enough to show that (all
    # eight take Tesseract half an hour on 224 noise images)
    ocr = ocr_scores(images["typography"], sets["typography"], readings=1 if model == "noise" else None)
    m["text"] = {
        "word_accuracy": _mean([o["word_accuracy"] for o in ocr]),
        "ned": _mean([o["ned"] for o in ocr]),
        "ned_whole": _mean([o["ned_whole"] for o in ocr]),
        "n": len(ocr),
    }
    truth = [r["tone"] for r in sets["skin_tones"]]
    predicted = [instr.tone_reader.read(im) for im in images["skin_tones"]]
    by_ita = [M.classify_tone(np.asarray(im.convert("RGB"))) for im in images["skin_tones"]]
    m["skin_tone"] = {
        "accuracy": _mean([float(p == t) for p, t in zip(predicted, truth, strict=True)]),
        "no_skin_found": sum(p is None for p in predicted),
        "labels": M.TONES,
        "confusion": M.confusion(truth, predicted),
        "reader": str(instr.tone_reader_path),
        # the ITA reader of METRICS_VERSION ≤ 5, kept so that older reports stay comparable
        "ita_accuracy": _mean([float(p == t) for p, t in zip(by_ita, truth, strict=True)]),
    }
    share, sims = memorised(instr, [im for k in PROMPT_SETS for im in images[k]])
    m["memorisation"] = {
        "share": share,
        "threshold": instr.copy_threshold,
        "val_images_share": memorised(instr, val_imgs)[0],
    }
    m["per_prompt"] = {  # for paired comparisons of two runs on the same seed (bench/paired.py)
        "concepts": concept_rows(concept_texts, seed, hits["fidelity"], hits["shape"]),
        "typography": [
            {"prompt": r.get("prompt"), "seed": seed + i, **o}
            for i, (r, o) in enumerate(zip(sets["typography"], ocr, strict=True))
        ],
        "skin_tones": tone_rows(sets["skin_tones"], seed, predicted),
        "features": {"concepts": f_gen, "real": f_val},  # the Fréchet distance's inputs (evaluate saves them)
    }
    return m, sets, images, ocr, sims


def concept_rows(prompts: list[str], seed: int, fidelity: np.ndarray, shape: np.ndarray) -> list[dict]:
    """per_prompt.json's concept rows: whether each image's text ranked first, for prompt and
    shape fidelity (None for a single image: no retrieval, as metrics.json's null)."""
    one = len(prompts) < 2
    return [
        {"prompt": p, "seed": seed + i, "fidelity": None if one else bool(f), "shape": None if one else bool(g)}
        for i, (p, f, g) in enumerate(zip(prompts, fidelity, shape, strict=True))
    ]


def tone_rows(rows: list[dict], seed: int, read: list[str | None]) -> list[dict]:
    """per_prompt.json's skin-tone rows: the tone asked and the tone read."""
    return [
        {"prompt": r.get("prompt"), "seed": seed + i, "tone": r["tone"], "read": t}
        for i, (r, t) in enumerate(zip(rows, read, strict=True))
    ]


def save_per_prompt(out: Path, rows: dict, concepts: np.ndarray, real: np.ndarray) -> None:
    """``per_prompt.json`` and ``features.npz`` (the Fréchet inputs) in ``out``: what
    :mod:`limner.eval.paired` reads."""
    (out / "per_prompt.json").write_text(json.dumps(_finite(rows), indent=1))
    np.savez_compressed(out / "features.npz", concepts=concepts, real=real)


def references(instr: Instruments, sets: dict, corpus: Path, limit: int | None, prompts_dir: Path) -> dict:
    """Summaries of the three reference models on these prompt sets, cached beside the corpus."""
    import hashlib

    instruments = (instr.evaluator_path, instr.shape_path, instr.tone_reader_path)
    key = hashlib.sha256(
        json.dumps(
            [
                METRICS_VERSION,
                sets,
                limit,
                *(str(p) for p in instruments),
                *(Path(p).stat().st_mtime for p in instruments),
            ],
            sort_keys=True,
        ).encode()
    )
    cache = Path(corpus) / f"eval-references-{key.hexdigest()[:16]}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    refs = {
        name: _finite(summary(measure(name, instr, json.loads(json.dumps(sets)), corpus, limit)[0]))
        for name in REFERENCE_MODELS
    }
    cache.write_text(json.dumps(refs, indent=1))
    return refs


def evaluate(
    model: str,
    out: Path,
    corpus: Path = Path("data/corpus"),
    prompts_dir: Path = Path("bench/prompts"),
    limit: int | None = None,
    baseline: Path | None = None,
    evaluator_path: Path | None = None,
    shape_evaluator_path: Path | None = None,
    tone_reader_path: Path | None = None,
    engine=None,
    speed: bool = True,
    progress=None,
    typography: str = "auto",
    with_references: bool = True,
    seed: int = 1000,
) -> dict:
    """Run every metric for ``model``; write ``metrics.json`` and ``report.html`` to ``out``. Unless the
    model is itself a reference, the report carries the references' numbers on the same prompts."""

    started = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    instr = load_instruments(corpus, evaluator_path, shape_evaluator_path, tone_reader_path)
    sets = load_prompts(prompts_dir, limit)
    m, sets, images, ocr, sims = measure(model, instr, sets, corpus, limit, engine, progress, typography, seed)
    per_prompt = m.pop("per_prompt")
    feats = per_prompt.pop("features")
    if with_references and model not in REFERENCE_MODELS:
        m["references"] = references(instr, load_prompts(prompts_dir, limit), corpus, limit, prompts_dir)
    if speed and model not in REFERENCE_MODELS:
        from limner.engine import Engine

        m["speed"] = measure_speed(model, engine or Engine())
    m["seconds"] = round(time.time() - started, 1)
    m["machine"] = machine_name()
    base = json.loads((Path(baseline) / "metrics.json").read_text()) if baseline else None
    m = _finite(m)
    (out / "metrics.json").write_text(json.dumps(m, indent=2))
    save_per_prompt(out, per_prompt, feats["concepts"], feats["real"])
    write_report(out, m, images, sets, ocr, sims, base)
    return m
