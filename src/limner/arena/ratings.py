"""Arena ratings as pure functions of the votes (no storage, no randomness but the given seed).

Bradley–Terry by logistic regression on the log-10 scale, as the public image arenas report it:
P(a beats b) = 1 / (1 + 10^(r_b − r_a)), ratings = 400·r + 1000 (mean 1000). A tie — and
"both bad", which says nothing about which is better — counts half a win for each side.
Intervals: bootstrap over battles (95 %), resampling whole prompts where votes name theirs (the
votes on one prompt judge the same images again and are not independent). Rank: 1 + the number of models whose lower bound is
above this model's upper bound. Online Elo is computed alongside for reference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

OUTCOMES = ("a", "b", "tie", "both_bad")
SCALE, BASE = 400.0, 1000.0
UNKNOWN = (BASE - 2 * SCALE, BASE + 2 * SCALE)  # the interval assumed for a model with no votes


@dataclass(frozen=True)
class Vote:
    model_a: str
    model_b: str
    outcome: str  # one of OUTCOMES
    group: str = ""  # what the vote shares with others (the battle's prompt); "" = nothing


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


def _cells(models: Sequence[str], votes: Sequence[Vote]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The votes folded into cells (i, j, share of the win that went to i) with a count each:
    the likelihood depends on nothing else, so the fit costs the same for 1k or 1M votes."""
    return _vote_cells(models, votes)[0]


def _vote_cells(models: Sequence[str], votes: Sequence[Vote]) -> tuple[tuple, np.ndarray]:
    """The cells (as ``_cells``) and the cell of each vote."""
    index = {m: k for k, m in enumerate(models)}
    n = len(models)
    i = np.array([index[v.model_a] for v in votes], dtype=np.int64)
    j = np.array([index[v.model_b] for v in votes], dtype=np.int64)
    share = np.array([2 if v.outcome == "a" else 0 if v.outcome == "b" else 1 for v in votes], dtype=np.int64)
    keys, cell_of_vote, counts = np.unique((i * n + j) * 3 + share, return_inverse=True, return_counts=True)
    return (keys // 3 // n, keys // 3 % n, (keys % 3) / 2.0, counts.astype(float)), cell_of_vote.ravel()


def fit_bradley_terry(
    n: int, i: np.ndarray, j: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = 0.1, iters: int = 50
) -> np.ndarray:
    """Strengths r (log-10 units, mean 0) maximising Σ w·[y·log p + (1−y)·log(1−p)] − l2·|r|²,
    p = σ(ln 10 · (r_i − r_j)), by Newton's method with the dense n×n Hessian. The ridge (a
    Gaussian prior, σ ≈ 2.2 in log-10 units) keeps a model that won or lost every vote finite
    and is negligible once a pair has tens of votes.

    ``w`` of shape (C,) gives r of shape (n,); ``w`` of shape (B, C) fits B weightings of the
    same cells at once (the bootstrap) and gives (B, n)."""
    single = np.ndim(w) == 1
    W = np.atleast_2d(np.asarray(w, dtype=float))  # (B, C)
    B = W.shape[0]
    rows = np.arange(B)[:, None]
    gi, gj = (rows * n + i).ravel(), (rows * n + j).ravel()  # (B·C,) slots in the gradient
    hij = (rows * n * n + i * n + j).ravel()  # (B·C,) slots in the Hessian
    ridge = 2 * l2 * np.eye(n)
    c = math.log(10.0)
    r = np.zeros((B, n))
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-c * (r[:, i] - r[:, j])))  # (B, C)
        g = (W * c * (y - p)).ravel()  # d loglik / d (r_i − r_j)
        grad = (np.bincount(gi, g, B * n) - np.bincount(gj, g, B * n)).reshape(B, n) - 2 * l2 * r
        h = (W * c * c * p * (1 - p)).ravel()
        off = np.bincount(hij, h, B * n * n).reshape(B, n, n)
        off = off + off.transpose(0, 2, 1)  # (B, n, n) symmetric, zero diagonal
        hess = off - off.sum(axis=2)[:, :, None] * np.eye(n) - ridge  # negative definite
        step = np.linalg.solve(hess, grad[:, :, None])[:, :, 0]  # (B, n)
        r = r - step
        r -= r.mean(axis=1, keepdims=True)
        if np.abs(step).max() < 1e-9:
            break
    return r[0] if single else r


def ratings(models: Sequence[str], votes: Sequence[Vote]) -> dict[str, float]:
    if not votes:
        return {m: BASE for m in models}
    r = fit_bradley_terry(len(models), *_cells(models, votes))
    return {m: float(SCALE * r[k] + BASE) for k, m in enumerate(models)}


MIN_GROUPS = 20  # fewer prompts than this are too few to resample: their votes are resampled instead
CHUNK = 4_000_000  # numbers held at once while resampling groups (rounds × groups)


def _group_cells(
    votes: Sequence[Vote], cell_of_vote: np.ndarray, n_cells: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The votes as (group, cell) entries with a count each, and the number of groups; a vote
    without a group is a group of its own."""
    names: dict[str, int] = {}
    group = np.array([names.setdefault(v.group or f"\0{k}", len(names)) for k, v in enumerate(votes)], dtype=np.int64)
    keys, counts = np.unique(group * n_cells + cell_of_vote, return_counts=True)
    return keys // n_cells, keys % n_cells, counts.astype(float), len(names)


def _resampled_groups(
    cells: tuple, entries: tuple[np.ndarray, np.ndarray, np.ndarray, int], rounds: int, rng: np.random.Generator
) -> np.ndarray:
    """(rounds, C) cell counts, each round drawing the groups with replacement; built a chunk of
    rounds at a time, so memory stays bounded however many votes and prompts there are."""
    group, cell, count, n_groups = entries
    C, G = len(cells[0]), n_groups
    out = np.empty((rounds, C))
    step = max(1, CHUNK // max(G, len(group)))
    for start in range(0, rounds, step):
        r = min(step, rounds - start)
        picks = rng.multinomial(G, np.full(G, 1 / G), size=r)  # (r, G): how often each group is drawn
        weights = (picks[:, group] * count).ravel()  # (r · entries,)
        slots = (np.arange(r)[:, None] * C + cell).ravel()
        out[start : start + r] = np.bincount(slots, weights, r * C).reshape(r, C)
    return out


def bootstrap_intervals(
    models: Sequence[str], votes: Sequence[Vote], rounds: int = 200, seed: int = 0, level: float = 0.95
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of the ratings over ``rounds`` resamples of the votes (with
    replacement: multinomial counts over the cells, which is the same thing and much cheaper).
    Votes that share a group (a prompt) are resampled together, the groups with replacement: a
    pool whose votes re-judge the same few image pairs many times gets intervals as wide as its
    few pairs warrant, not as narrow as its many votes would suggest. Under MIN_GROUPS groups there
    are too few to resample (one prompt would give every round the same votes), and the votes
    are resampled one by one, as without groups.
    Only models with votes get an interval: one nobody has judged is not known to be at 1000."""
    if not votes:
        return {}
    cells, cell_of_vote = _vote_cells(models, votes)
    i, j, y, w = cells
    rng = np.random.default_rng(seed)
    entries = _group_cells(votes, cell_of_vote, len(w)) if any(v.group for v in votes) else None
    # every vote a group of its own resamples exactly as votes do, and far more cheaply
    if entries is not None and MIN_GROUPS <= entries[3] < len(votes):
        counts = _resampled_groups(cells, entries, rounds, rng)
    else:
        counts = rng.multinomial(int(w.sum()), w / w.sum(), size=rounds)  # (rounds, C)
    samples = SCALE * fit_bradley_terry(len(models), i, j, y, counts) + BASE  # (rounds, n)
    lo, hi = np.percentile(samples, [(1 - level) / 2 * 100, (1 + level) / 2 * 100], axis=0)
    seen = set(i.tolist()) | set(j.tolist())
    return {m: (float(lo[k]), float(hi[k])) for k, m in enumerate(models) if k in seen}


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
    """The standing of every model with at least one vote, best first."""
    counts = {m: 0 for m in models}
    wins = {m: 0.0 for m in models}
    for v in votes:
        counts[v.model_a] += 1
        counts[v.model_b] += 1
        share = 1.0 if v.outcome == "a" else 0.0 if v.outcome == "b" else 0.5
        wins[v.model_a] += share
        wins[v.model_b] += 1 - share
    point = ratings(models, votes)
    intervals = bootstrap_intervals(models, votes, rounds, seed)
    rank = ranks(intervals)
    elo = online_elo(models, votes)
    out = [
        Standing(m, point[m], intervals[m][0], intervals[m][1], rank[m], counts[m], wins[m], elo[m])
        for m in models
        if counts[m]
    ]
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
    model keeps being sampled. A model without an interval (no votes yet) counts as unknown
    anywhere in ±2·SCALE. Returns the pair in random order (A/B position is random)."""
    if len(models) < 2:
        raise ValueError("the arena needs at least two models")
    pairs = [(a, b) for k, a in enumerate(models) for b in models[k + 1 :]]
    if rng.random() < explore:
        a, b = pairs[rng.integers(len(pairs))]
    else:
        scores = []
        for a, b in pairs:
            (la, ua), (lb, ub) = intervals.get(a, UNKNOWN), intervals.get(b, UNKNOWN)
            overlap = max(0.0, min(ua, ub) - max(la, lb)) + 1.0
            n = pair_counts.get((a, b), 0) + pair_counts.get((b, a), 0)
            scores.append(overlap / math.sqrt(n + 1))
        p = np.array(scores) / sum(scores)
        a, b = pairs[rng.choice(len(pairs), p=p)]
    return (a, b) if rng.random() < 0.5 else (b, a)


def pair_key(a: str, b: str) -> tuple[str, str]:
    """Two models in one order, whichever sat on which side."""
    return (a, b) if a <= b else (b, a)


def least_judged(
    prompts: Sequence[str],
    pair: tuple[str, str],
    slot_votes: dict[tuple[str, tuple[str, str]], int],
    rng: np.random.Generator,
) -> str:
    """Of the prompts both models of ``pair`` drew, one on which the two have met in the fewest
    votes (random among ties; ``slot_votes`` is keyed by prompt and the sorted pair): a pair's
    votes spread over the pool before any prompt is judged twice, and the intervals, which
    resample prompts, learn from every one of them."""
    key = pair_key(*pair)
    counts = [slot_votes.get((p, key), 0) for p in prompts]
    fewest = [p for p, n in zip(prompts, counts, strict=True) if n == min(counts)]
    return fewest[int(rng.integers(len(fewest)))]
