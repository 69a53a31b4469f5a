"""Arena ratings as pure functions of the votes (no storage, no randomness but the given seed).

Bradley–Terry by logistic regression on the log-10 scale, as the public image arenas report it:
P(a beats b) = 1 / (1 + 10^(r_b − r_a)), ratings = 400·r + 1000 (mean 1000). A tie — and
"both bad", which says nothing about which is better — counts half a win for each side.
Intervals: bootstrap over battles (95 %). Rank: 1 + the number of models whose lower bound is
above this model's upper bound. Online Elo is computed alongside for reference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

OUTCOMES = ("a", "b", "tie", "both_bad")
SCALE, BASE = 400.0, 1000.0


@dataclass(frozen=True)
class Vote:
    model_a: str
    model_b: str
    outcome: str  # one of OUTCOMES


@dataclass
class Standing:
    model: str
    rating: float
    lower: float
    upper: float
    rank: int
    votes: int
    wins: float  # ties count half
    elo: float


def _design(models: Sequence[str], votes: Sequence[Vote]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs (i, j) with the share of the win that went to i, weight 1 per vote."""
    index = {m: k for k, m in enumerate(models)}
    i = np.array([index[v.model_a] for v in votes], dtype=np.int64)
    j = np.array([index[v.model_b] for v in votes], dtype=np.int64)
    y = np.array([1.0 if v.outcome == "a" else 0.0 if v.outcome == "b" else 0.5 for v in votes])
    w = np.ones(len(votes))
    return i, j, y, w


def fit_bradley_terry(
    n: int, i: np.ndarray, j: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = 0.1, iters: int = 50
) -> np.ndarray:
    """Strengths r (log-10 units, mean 0) maximising Σ w·[y·log p + (1−y)·log(1−p)] − l2·|r|²,
    p = σ(ln 10 · (r_i − r_j)), by Newton's method. The ridge (a Gaussian prior, σ ≈ 2.2
    in log-10 units) keeps a model that won or lost every vote finite and is negligible once a
    pair has tens of votes."""
    r = np.zeros(n)
    c = math.log(10.0)
    for _ in range(iters):
        d = r[i] - r[j]
        p = 1.0 / (1.0 + np.exp(-c * d))
        g_pair = w * c * (y - p)  # d loglik / d d
        grad = np.bincount(i, g_pair, n) - np.bincount(j, g_pair, n) - 2 * l2 * r
        h_pair = w * c * c * p * (1 - p)
        hess = np.zeros((n, n))
        np.add.at(hess, (i, i), -h_pair)
        np.add.at(hess, (j, j), -h_pair)
        np.add.at(hess, (i, j), h_pair)
        np.add.at(hess, (j, i), h_pair)
        hess -= 2 * l2 * np.eye(n)
        step = np.linalg.solve(hess - 1e-9 * np.eye(n), grad)
        r = r - step
        r -= r.mean()
        if np.abs(step).max() < 1e-9:
            break
    return r


def ratings(models: Sequence[str], votes: Sequence[Vote]) -> dict[str, float]:
    if not votes:
        return {m: BASE for m in models}
    r = fit_bradley_terry(len(models), *_design(models, votes))
    return {m: SCALE * r[k] + BASE for k, m in enumerate(models)}


def bootstrap_intervals(
    models: Sequence[str], votes: Sequence[Vote], rounds: int = 200, seed: int = 0, level: float = 0.95
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of the ratings over ``rounds`` resamples of the votes."""
    if not votes:
        return {m: (BASE, BASE) for m in models}
    i, j, y, w = _design(models, votes)
    rng = np.random.default_rng(seed)
    samples = np.empty((rounds, len(models)))
    for b in range(rounds):
        pick = rng.integers(0, len(votes), len(votes))
        samples[b] = SCALE * fit_bradley_terry(len(models), i[pick], j[pick], y[pick], w[pick]) + BASE
    lo, hi = np.percentile(samples, [(1 - level) / 2 * 100, (1 + level) / 2 * 100], axis=0)
    return {m: (float(lo[k]), float(hi[k])) for k, m in enumerate(models)}


def ranks(intervals: dict[str, tuple[float, float]]) -> dict[str, int]:
    """1 + the number of models whose lower bound exceeds this model's upper bound."""
    return {m: 1 + sum(1 for o, (lo, _) in intervals.items() if o != m and lo > up) for m, (_, up) in intervals.items()}


def online_elo(models: Sequence[str], votes: Sequence[Vote], k: float = 4.0) -> dict[str, float]:
    """Sequential Elo (K = 4, as LMSYS reports alongside Bradley–Terry); order-dependent."""
    r = {m: BASE for m in models}
    for v in votes:
        ea = 1.0 / (1.0 + 10 ** ((r[v.model_b] - r[v.model_a]) / SCALE))
        sa = 1.0 if v.outcome == "a" else 0.0 if v.outcome == "b" else 0.5
        r[v.model_a] += k * (sa - ea)
        r[v.model_b] -= k * (sa - ea)
    return r


def leaderboard(models: Sequence[str], votes: Sequence[Vote], rounds: int = 200, seed: int = 0) -> list[Standing]:
    """Every model's standing, best first."""
    point = ratings(models, votes)
    intervals = bootstrap_intervals(models, votes, rounds, seed)
    rank = ranks(intervals)
    elo = online_elo(models, votes)
    counts = {m: 0 for m in models}
    wins = {m: 0.0 for m in models}
    for v in votes:
        counts[v.model_a] += 1
        counts[v.model_b] += 1
        share = 1.0 if v.outcome == "a" else 0.0 if v.outcome == "b" else 0.5
        wins[v.model_a] += share
        wins[v.model_b] += 1 - share
    out = [Standing(m, point[m], intervals[m][0], intervals[m][1], rank[m], counts[m], wins[m], elo[m]) for m in models]
    return sorted(out, key=lambda s: (s.rank, -s.rating))


def choose_pair(
    models: Sequence[str],
    intervals: dict[str, tuple[float, float]],
    pair_counts: dict[tuple[str, str], int],
    rng: np.random.Generator,
    explore: float = 0.25,
) -> tuple[str, str]:
    """Active sampling: most often the pair whose order is least settled (overlapping intervals,
    few votes between them); with probability ``explore`` a uniformly random pair, so every
    model keeps being sampled. Returns the pair in random order (A/B position is random)."""
    if len(models) < 2:
        raise ValueError("the arena needs at least two models")
    pairs = [(a, b) for k, a in enumerate(models) for b in models[k + 1 :]]
    if rng.random() < explore:
        a, b = pairs[rng.integers(len(pairs))]
    else:
        scores = []
        for a, b in pairs:
            (la, ua), (lb, ub) = intervals.get(a, (BASE, BASE)), intervals.get(b, (BASE, BASE))
            overlap = max(0.0, min(ua, ub) - max(la, lb)) + 1.0
            n = pair_counts.get((a, b), 0) + pair_counts.get((b, a), 0)
            scores.append(overlap / math.sqrt(n + 1))
        p = np.array(scores) / sum(scores)
        a, b = pairs[rng.choice(len(pairs), p=p)]
    return (a, b) if rng.random() < 0.5 else (b, a)
