"""Ratings as pure functions: Bradley–Terry recovers known strengths, intervals shrink with votes,
ties and "both bad" are half a win, the rank rule, online Elo and active pair selection."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest

from limner.arena.ratings import (
    BASE,
    Vote,
    bootstrap_intervals,
    choose_pair,
    fit_bradley_terry,
    leaderboard,
    least_judged,
    online_elo,
    ranks,
    ratings,
)

TRUE = {"m0": 1180.0, "m1": 1090.0, "m2": 1010.0, "m3": 960.0, "m4": 820.0}


def simulate(true: dict[str, float], n: int, seed: int, tie_rate: float = 0.0) -> list[Vote]:
    """Votes drawn from the Bradley–Terry model itself: P(a beats b) = 1 / (1 + 10^((r_b − r_a)/400))."""
    rng = np.random.default_rng(seed)
    models = list(true)
    votes = []
    for _ in range(n):
        a, b = rng.choice(len(models), 2, replace=False)
        ma, mb = models[a], models[b]
        if rng.random() < tie_rate:
            votes.append(Vote(ma, mb, "tie"))
            continue
        p = 1 / (1 + 10 ** ((true[mb] - true[ma]) / 400))
        votes.append(Vote(ma, mb, "a" if rng.random() < p else "b"))
    return votes


def centred(true: dict[str, float]) -> dict[str, float]:
    """Ratings are only defined up to a shift; the fit puts their mean at 1000."""
    shift = BASE - float(np.mean(list(true.values())))
    return {m: r + shift for m, r in true.items()}


def test_recovers_known_strengths():
    votes = simulate(TRUE, 8000, seed=0)
    fitted = ratings(list(TRUE), votes)
    for m, r in centred(TRUE).items():
        assert fitted[m] == pytest.approx(r, abs=25), m
    assert np.mean(list(fitted.values())) == pytest.approx(BASE)
    assert sorted(fitted, key=fitted.get, reverse=True) == list(TRUE)


def test_true_strengths_lie_within_their_intervals():
    """95 % intervals: over 20 simulated arenas × 5 models, about 95 of the 100 intervals hold
    the true rating (a single seed would pass or fail by luck one time in four)."""
    inside = 0
    for seed in range(20):
        votes = simulate(TRUE, 3000, seed=100 + seed)
        intervals = bootstrap_intervals(list(TRUE), votes, rounds=200, seed=seed)
        fitted = ratings(list(TRUE), votes)
        for m, r in centred(TRUE).items():
            lo, hi = intervals[m]
            assert lo <= fitted[m] <= hi
            inside += lo <= r <= hi
    assert inside >= 88, inside  # binomial(100, 0.95) falls below 88 with probability < 0.2 %


def test_intervals_shrink_as_votes_grow():
    few = bootstrap_intervals(list(TRUE), simulate(TRUE, 400, seed=2), rounds=200)
    many = bootstrap_intervals(list(TRUE), simulate(TRUE, 6400, seed=3), rounds=200)
    for m in TRUE:
        width_few, width_many = few[m][1] - few[m][0], many[m][1] - many[m][0]
        # 16× the votes: about a quarter of the width; allow generous sampling noise
        assert width_many < 0.45 * width_few, (m, width_few, width_many)


def test_cells_give_the_same_fit_as_one_row_per_vote():
    votes = simulate(TRUE, 1500, seed=4, tie_rate=0.2)
    models = list(TRUE)
    index = {m: k for k, m in enumerate(models)}
    i = np.array([index[v.model_a] for v in votes])
    j = np.array([index[v.model_b] for v in votes])
    y = np.array([{"a": 1.0, "b": 0.0, "tie": 0.5}[v.outcome] for v in votes])
    per_vote = 400 * fit_bradley_terry(len(models), i, j, y, np.ones(len(votes))) + BASE
    folded = ratings(models, votes)
    assert [folded[m] for m in models] == pytest.approx(per_vote, abs=1e-6)


def test_a_set_of_only_ties_gives_equal_ratings():
    votes = [Vote(a, b, "tie") for a, b in [("x", "y"), ("y", "z"), ("x", "z"), ("z", "x")] * 5]
    assert ratings(["x", "y", "z"], votes) == pytest.approx({"x": BASE, "y": BASE, "z": BASE})
    both_bad = [Vote(v.model_a, v.model_b, "both_bad") for v in votes]
    assert ratings(["x", "y", "z"], both_bad) == pytest.approx({"x": BASE, "y": BASE, "z": BASE})


def test_both_bad_counts_exactly_as_a_tie():
    votes = simulate(TRUE, 1000, seed=5, tie_rate=0.3)
    swapped = [Vote(v.model_a, v.model_b, "both_bad") if v.outcome == "tie" else v for v in votes]
    assert sum(v.outcome == "both_bad" for v in swapped) > 200
    assert ratings(list(TRUE), swapped) == ratings(list(TRUE), votes)
    assert bootstrap_intervals(list(TRUE), swapped, seed=7) == bootstrap_intervals(list(TRUE), votes, seed=7)
    board, board_swapped = leaderboard(list(TRUE), votes), leaderboard(list(TRUE), swapped)
    assert [(s.model, s.wins) for s in board] == [(s.model, s.wins) for s in board_swapped]


def test_a_tie_is_half_a_win():
    # one win and one loss between x and y is the same evidence as two ties
    decisive = [Vote("x", "y", "a"), Vote("x", "y", "b"), Vote("y", "z", "a")]
    ties = [Vote("x", "y", "tie"), Vote("x", "y", "both_bad"), Vote("y", "z", "a")]
    assert ratings(["x", "y", "z"], ties) == pytest.approx(ratings(["x", "y", "z"], decisive))
    wins = {s.model: s.wins for s in leaderboard(["x", "y", "z"], ties)}
    assert wins == {"x": 1.0, "y": 2.0, "z": 0.0}


def test_rank_is_one_plus_models_whose_lower_bound_beats_this_upper_bound():
    intervals = {
        "a": (1100.0, 1200.0),
        "b": (1080.0, 1150.0),  # overlaps a: both rank 1
        "c": (1000.0, 1090.0),  # only a's lower bound (1100) is above 1090
        "e": (900.0, 1000.0),  # a and b are above; c's lower bound equals 1000, not above
        "d": (900.0, 950.0),  # a, b and c are above; e's lower bound 900 is not
    }
    assert ranks(intervals) == {"a": 1, "b": 1, "c": 2, "e": 3, "d": 4}


def test_leaderboard_is_ordered_by_rank_then_rating_and_skips_models_without_votes():
    votes = simulate(TRUE, 3000, seed=6)
    board = leaderboard([*TRUE, "unvoted"], votes)
    assert [s.model for s in board] == list(TRUE)
    assert [s.rank for s in board] == sorted(s.rank for s in board)
    assert board[0].rank == 1
    assert sum(s.votes for s in board) == 2 * len(votes)
    assert sum(s.wins for s in board) == len(votes)
    for s in board:
        assert s.lower <= s.rating <= s.upper
    assert "unvoted" not in bootstrap_intervals([*TRUE, "unvoted"], votes)


def test_online_elo_moves_the_right_way():
    first = online_elo(["x", "y"], [Vote("x", "y", "a")])
    assert first == {"x": 1002.0, "y": 998.0}  # K = 4, expected score 0.5
    assert online_elo(["x", "y"], [Vote("x", "y", "b")]) == {"x": 998.0, "y": 1002.0}
    # after x's win, a tie is a worse result than expected for x: x gives some back
    after_tie = online_elo(["x", "y"], [Vote("x", "y", "a"), Vote("y", "x", "tie")])
    assert 1000 < after_tie["x"] < first["x"] and first["y"] < after_tie["y"] < 1000
    assert after_tie["x"] + after_tie["y"] == pytest.approx(2000)
    # and over many votes it orders models as Bradley–Terry does
    elo = online_elo(list(TRUE), simulate(TRUE, 4000, seed=8))
    assert sorted(elo, key=elo.get, reverse=True) == list(TRUE)


def test_choose_pair_favours_uncertain_pairs_but_samples_every_model():
    models = ["a", "b", "c", "d"]
    intervals = {"a": (900.0, 1100.0), "b": (920.0, 1080.0), "c": (1300.0, 1340.0), "d": (600.0, 640.0)}
    counts = {(x, y): 100 for x in models for y in models if x < y}
    counts[("a", "b")] = 4  # a and b overlap widely and have few votes between them
    rng = np.random.default_rng(0)
    draws = [choose_pair(models, intervals, counts, rng) for _ in range(4000)]
    pairs = Counter(frozenset(d) for d in draws)
    share_ab = pairs[frozenset("ab")] / len(draws)
    assert share_ab > 0.7  # 0.75 of exploitation + 0.25 / 6 of exploration ≈ 0.79
    assert len(pairs) == 6  # every pair is drawn
    for m in models:  # each model is in half the pairs: at least ≈ 0.125 from exploration alone
        assert sum(m in d for d in draws) / len(draws) > 0.08, m
    # the A/B position is a coin flip
    first_a = sum(d == ("a", "b") for d in draws) / pairs[frozenset("ab")]
    assert 0.45 < first_a < 0.55


def test_choose_pair_treats_a_model_without_votes_as_uncertain():
    models = ["a", "b", "new"]
    intervals = {"a": (1190.0, 1210.0), "b": (790.0, 810.0)}  # settled; "new" has no interval
    counts = {("a", "b"): 500}
    rng = np.random.default_rng(1)
    draws = Counter(frozenset(choose_pair(models, intervals, counts, rng)) for _ in range(2000))
    assert draws[frozenset(("a", "b"))] < 0.15 * 2000
    with pytest.raises(ValueError, match="at least two"):
        choose_pair(["a"], {}, {}, rng)


def test_least_judged_takes_a_prompt_the_pair_has_met_on_least_whichever_side_each_was():
    prompts = ["p0", "p1", "p2", "p3"]
    slots = {("p0", ("a", "b")): 2, ("p1", ("a", "b")): 1, ("p3", ("a", "b")): 1, ("p2", ("a", "c")): 5}
    rng = np.random.default_rng(0)
    assert {least_judged(prompts, ("b", "a"), slots, rng) for _ in range(50)} == {"p2"}  # a–c's votes are not a–b's
    slots[("p2", ("a", "b"))] = 1
    assert {least_judged(prompts, ("a", "b"), slots, rng) for _ in range(200)} == {"p1", "p2", "p3"}


def test_board_fit_is_fast_for_20_models_and_20k_votes():
    rng = np.random.default_rng(9)
    true = {f"model-{k}": float(r) for k, r in enumerate(rng.normal(1000, 120, 20))}
    votes = simulate(true, 20_000, seed=10, tie_rate=0.1)
    start = time.perf_counter()
    board = leaderboard(list(true), votes, rounds=200)
    elapsed = time.perf_counter() - start
    assert elapsed < 3.0, f"{elapsed:.2f} s"  # about 0.15 s on one idle core
    assert len(board) == 20
    fitted = {s.model: s.rating for s in board}
    assert np.corrcoef([true[m] for m in true], [fitted[m] for m in true])[0, 1] > 0.98


def test_votes_that_rejudge_the_same_prompts_get_intervals_as_wide_as_their_prompts_warrant():
    """Thirty prompts, each judged 60 times by voters who agree on it (x wins 18 of 30): the votes
    look like 1,800 independent ones, the evidence is thirty. Resampling prompts gives intervals
    that hold the even 50 / 50 a new set of prompts might show; resampling votes does not."""
    votes = []
    for p in range(30):
        winner = "a" if p < 18 else "b"
        votes += [Vote("x", "y", winner, f"prompt {p}") for _ in range(60)]
    loose = [Vote(v.model_a, v.model_b, v.outcome) for v in votes]
    by_prompt = bootstrap_intervals(["x", "y"], votes, rounds=400, seed=1)
    by_vote = bootstrap_intervals(["x", "y"], loose, rounds=400, seed=1)
    assert by_vote["x"][0] > 1000 > by_vote["y"][1]  # "separated" — by re-judged pairs only
    assert by_prompt["x"][0] < 1000 < by_prompt["y"][1]
    width = {k: iv["x"][1] - iv["x"][0] for k, iv in (("prompt", by_prompt), ("vote", by_vote))}
    assert width["prompt"] > 3 * width["vote"], width


def test_votes_each_on_a_prompt_of_their_own_resample_like_ungrouped_votes():
    votes = simulate(TRUE, 2000, seed=5)
    grouped = [Vote(v.model_a, v.model_b, v.outcome, f"p{k}") for k, v in enumerate(votes)]
    a, b = bootstrap_intervals(list(TRUE), votes, seed=3), bootstrap_intervals(list(TRUE), grouped, seed=3)
    for m in TRUE:
        wa, wb = a[m][1] - a[m][0], b[m][1] - b[m][0]
        assert abs(wa - wb) < 0.25 * wa, (m, wa, wb)


def test_a_handful_of_prompts_is_too_few_to_resample_and_votes_are_resampled_instead():
    """One or two prompts: resampling them would give every round (nearly) the same votes and an
    interval of no width; below MIN_GROUPS the votes are resampled as if ungrouped."""
    for n_prompts in (1, 2):
        votes = [Vote("x", "y", "a" if k % 3 else "b", f"p{k % n_prompts}") for k in range(120)]
        loose = [Vote(v.model_a, v.model_b, v.outcome) for v in votes]
        grouped, plain = bootstrap_intervals(["x", "y"], votes, seed=4), bootstrap_intervals(["x", "y"], loose, seed=4)
        assert grouped == plain and grouped["x"][1] - grouped["x"][0] > 20


def test_grouped_and_ungrouped_votes_mix_and_memory_stays_bounded(monkeypatch):
    """Live battles (a prompt each) beside a curated pool's re-judged prompts: the ungrouped votes
    are groups of one; resampling in small chunks gives the same intervals as in one go."""
    votes = [Vote(v.model_a, v.model_b, v.outcome, f"pool {k % 30}") for k, v in enumerate(simulate(TRUE, 900, 8))]
    votes += simulate(TRUE, 600, seed=9)
    whole = bootstrap_intervals(list(TRUE), votes, rounds=60, seed=2)
    monkeypatch.setattr("limner.arena.ratings.CHUNK", 1000)  # a few rounds at a time
    assert bootstrap_intervals(list(TRUE), votes, rounds=60, seed=2) == whole
    assert all(lo < hi for lo, hi in whole.values())
