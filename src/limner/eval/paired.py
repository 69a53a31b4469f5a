"""Paired comparison of two sets of ``limner eval`` runs: how far the new settings moved each
metric, and whether that move is bigger than the noise of resampling the prompts.

Two runs drawn on the same seed share every prompt and every starting noise, so most of what
makes one seed's figure differ from another's cancels in the per-prompt differences. Each run's
folder holds ``per_prompt.json`` and ``features.npz`` (written by :func:`limner.eval.run.evaluate`);
pairs of runs (base, new) must be on the same prompts and seeds; a prompt set that some run
lacks (bench/screen.py draws no typography) is left out. The figure is the mean over pairs
of new − base, and its interval a percentile bootstrap over prompts: the same resampled prompts
in every pair (prompt i of a set is the same text on every seed). The Fréchet distance is
recomputed on each resampled set of concept images against the fixed real features. (The
concept prompts come about twenty to a concept and each is scored against the others as
distractors, so prompts are not fully independent: read the intervals as a little optimistic.)

    python bench/paired.py --base reports/old-3000 reports/old-4000 --new reports/new-3000 reports/new-4000
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from limner.eval import metrics as M


def _num(v: float | None) -> float:
    return float("nan") if v is None else float(v)  # metrics.json's null: nothing to score


# label → (prompt set, per-prompt value)
PER_PROMPT: dict[str, tuple[str, Callable[[dict], float]]] = {
    "prompt fidelity": ("concepts", lambda r: _num(r["fidelity"])),
    "shape fidelity": ("concepts", lambda r: _num(r["shape"])),
    "OCR word accuracy": ("typography", lambda r: _num(r["word_accuracy"])),
    "OCR edit distance, quoted spans": ("typography", lambda r: _num(r["ned"])),
    "OCR edit distance, whole image": ("typography", lambda r: _num(r["ned_whole"])),
    "skin-tone accuracy": ("skin_tones", lambda r: float(r["read"] == r["tone"])),
}
FRECHET = "Fréchet distance to real"


class Run:
    """One eval folder's per-prompt results and Fréchet features."""

    def __init__(self, folder: Path):
        folder = Path(folder)
        try:
            self.rows: dict[str, list[dict]] = json.loads((folder / "per_prompt.json").read_text())
            with np.load(folder / "features.npz") as z:
                self.concepts, self.real = z["concepts"], z["real"]
        except FileNotFoundError as e:
            raise ValueError(f"{folder} holds no per-prompt results ({e.filename}): rerun `limner eval` there") from e
        self.folder = folder

    def values(self, label: str) -> np.ndarray:
        name, value = PER_PROMPT[label]
        return np.array([value(r) for r in self.rows[name]], dtype=np.float64)

    def key(self, name: str) -> list[tuple]:
        return [(r["prompt"], r["seed"]) for r in self.rows[name]]


def bootstrap_change(diffs: np.ndarray, rng: np.random.Generator, rounds: int = 1000) -> dict:
    """Per-prompt changes, (pairs, prompts) with prompt i the same text in every pair → their
    mean, its 95 % percentile interval (the prompts resampled together across the pairs), and
    each pair's own mean."""
    count = diffs.shape[1]
    idx = rng.integers(0, count, size=(rounds, count))
    boot = diffs.mean(0)[idx].mean(1)
    return {
        "change": float(diffs.mean()),
        "interval": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))],
        "prompts": int(count),
        "per_pair": [float(d) for d in diffs.mean(1)],  # the change on each seed
    }


def compare(base: list[Path], new: list[Path], rounds: int = 1000, frechet_rounds: int = 200, seed: int = 0) -> dict:
    """Per metric: each run's figure, the mean paired change new − base, and its 95 % interval
    over resampled prompts."""
    if not base or len(base) != len(new):
        raise ValueError("give as many new runs as base runs, in pairs drawn on the same seeds")
    pairs = [(Run(b), Run(n)) for b, n in zip(base, new, strict=True)]
    shared = [
        name for name in ("concepts", "typography", "skin_tones") if all(name in r.rows for p in pairs for r in p)
    ]
    first = pairs[0][0]
    for b, n in pairs:
        for name in shared:
            if b.key(name) != n.key(name):
                raise ValueError(f"{b.folder} and {n.folder} differ in their {name} prompts or seeds: not a pair")
            if [k[0] for k in b.key(name)] != [k[0] for k in first.key(name)]:  # resampled together
                raise ValueError(f"{b.folder} and {first.folder} differ in their {name} prompts: not the same sets")
        for r in (b, n):
            if len(r.concepts) != len(first.concepts) or not np.array_equal(r.real, first.real):
                raise ValueError(
                    f"{r.folder}: other Fréchet features than {first.folder} (another evaluator or limit?)"
                )
    rng = np.random.default_rng(seed)
    out: dict = {"pairs": [[str(b.folder), str(n.folder)] for b, n in pairs], "metrics": {}}
    for label, (name, _) in PER_PROMPT.items():
        if name not in shared:  # a screen (bench/screen.py) leaves the typography set out
            continue
        values = [(b.values(label), n.values(label)) for b, n in pairs]
        diffs = np.stack([nv - bv for bv, nv in values])  # (pairs, prompts)
        valid = ~np.isnan(diffs).any(0)  # a prompt whose text no reading scored in some run drops out
        diffs = diffs[:, valid]
        count = diffs.shape[1]
        if count == 0:
            continue
        out["metrics"][label] = {  # each run's figure over the same prompts as the change
            "base": [float(bv[valid].mean()) for bv, _ in values],
            "new": [float(nv[valid].mean()) for _, nv in values],
            **bootstrap_change(diffs, rng, rounds),
        }
    count = len(pairs[0][0].concepts)
    idx = rng.integers(0, count, size=(frechet_rounds, count))

    def frechet_change(rows: np.ndarray) -> float:
        return float(
            np.mean(
                [
                    M.frechet_distance(n.concepts[rows], n.real) - M.frechet_distance(b.concepts[rows], b.real)
                    for b, n in pairs
                ]
            )
        )

    boot = np.array([frechet_change(i) for i in idx])
    out["metrics"][FRECHET] = {
        "base": [M.frechet_distance(b.concepts, b.real) for b, _ in pairs],
        "new": [M.frechet_distance(n.concepts, n.real) for _, n in pairs],
        "change": frechet_change(np.arange(count)),
        "interval": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))],
        "prompts": count,
    }
    for m in out["metrics"].values():  # the base runs' own spread: the seed-to-seed noise
        m["base_spread"] = float(max(m["base"]) - min(m["base"])) if len(m["base"]) > 1 else None
    return out
