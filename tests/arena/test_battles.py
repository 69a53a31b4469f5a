"""Battles through the HTTP API: anonymity until the vote, one vote per battle, signed tokens,
daily caps, flagged voters, per-category boards, live battles and the preference-pair export."""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from arena_helpers import MODELS, POOL, battle_and_vote, error_of, new_battle, png_chunks, sign_up, vote
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from limner.arena import battles
from limner.arena.categories import categorize
from limner.engine import GenerationRequest
from limner.provenance import credentials
from limner.provenance.watermark import psnr
from limner.store.db import ArenaBattle, ArenaImage, ArenaVoter, Mark, StoredFile

pytestmark = pytest.mark.usefixtures("clock")


def voter_of(tc: TestClient) -> str:
    return "anon:" + tc.cookies["limner_voter"]


def another_voter(tc: TestClient) -> TestClient:
    """A second browser on the same running app (its own cookie jar)."""
    return TestClient(tc.app)


def board(tc: TestClient, category: str = "overall") -> dict:
    r = tc.get("/arena/api/leaderboard", params={"category": category})
    assert r.status_code == 200, r.text
    return r.json()


def stored_votes(arena, voter: str | None = None) -> int:
    with arena.db.session() as s:
        q = select(func.count()).select_from(ArenaBattle).where(ArenaBattle.outcome.is_not(None))
        if voter:
            q = q.where(ArenaBattle.voter == voter)
        return s.scalar(q)


def voter_row(arena, voter: str) -> ArenaVoter:
    with arena.db.session() as s:
        row = s.get(ArenaVoter, voter)
        s.expunge(row)
        return row


# -- anonymity ---------------------------------------------------------------------------------


def test_model_names_are_hidden_until_the_vote(client, pool):
    page = client.get("/arena")
    assert page.status_code == 200
    battle = new_battle(client)
    assert set(battle) == {"id", "prompt", "token", "images"}
    assert battle["prompt"] in pool
    images, headers = {}, {}
    for side in ("a", "b"):
        r = client.get(battle["images"][side])
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert r.headers["cache-control"] == "private, no-store"
        images[side], headers[side] = r.content, str(dict(r.headers))
    assert images["a"] != images["b"]
    for name in MODELS:
        assert name not in page.text
        assert name not in json.dumps(battle)
        for side in ("a", "b"):
            assert name.encode() not in images[side] and name not in headers[side], side
    for data in images.values():  # nothing but pixels: no text, EXIF or time chunks
        assert set(png_chunks(data)) <= {"IHDR", "IDAT", "IEND"}

    r = vote(client, battle, "a")
    assert r.status_code == 200
    revealed = r.json()
    assert revealed["battle_id"] == battle["id"] and revealed["outcome"] == "a"
    assert set(revealed["models"].values()) == set(MODELS)
    assert [s["model"] for s in board(client)["standings"]] == [revealed["models"]["a"], revealed["models"]["b"]]
    assert revealed["models"]["a"] in client.get("/arena/leaderboard").text


def test_both_sides_come_from_the_pool_image_of_their_model(client, arena, pool):
    battle = new_battle(client)
    shown = {side: client.get(battle["images"][side]).content for side in ("a", "b")}
    models = vote(client, battle, "tie").json()["models"]
    with arena.db.session() as s:
        for side in ("a", "b"):
            file_id = s.scalar(
                select(ArenaImage.file_id).where(
                    ArenaImage.prompt == battle["prompt"], ArenaImage.model == models[side]
                )
            )
            b = s.get(ArenaBattle, battle["id"])
            assert (b.file_a if side == "a" else b.file_b) == file_id
            assert b.source == "pool" and b.categories == categorize(battle["prompt"])
    assert shown["a"] != shown["b"]


def test_sides_are_drawn_at_random(client, pool):
    firsts = {battle_and_vote(client, "tie")["models"]["a"] for _ in range(16)}
    assert firsts == set(MODELS)  # each model shows up on the left (fails by chance 1 time in 32768)


# -- one vote, signed tokens -------------------------------------------------------------------


def test_a_second_vote_on_the_same_battle_is_refused(client, arena, pool):
    battle = new_battle(client)
    assert vote(client, battle, "a").status_code == 200
    for outcome in ("a", "b", "tie"):
        r = vote(client, battle, outcome)
        assert r.status_code == 409
        assert error_of(r)["code"] == "already_voted"
        assert error_of(r)["type"] == "invalid_request_error"
    assert stored_votes(arena) == 1
    assert board(client)["votes"] == 1
    with arena.db.session() as s:
        assert s.get(ArenaBattle, battle["id"]).outcome == "a"


def test_a_token_for_another_voter_or_battle_is_refused(client, arena, pool):
    mine = new_battle(client)
    other = another_voter(client)
    theirs = new_battle(other)
    assert voter_of(other) != voter_of(client)

    # someone else's battle, with its real token: neither the images nor a vote
    r = other.get(mine["images"]["a"])
    assert r.status_code == 404 and error_of(r)["code"] == "battle_not_found"
    r = vote(other, mine, "b")
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_token"
    # my battle with the token of another battle, or a forged one
    for token in (theirs["token"], "0" * 40, ""):
        r = vote(client, mine, "b", token=token)
        assert r.status_code == 400 and error_of(r)["code"] == "invalid_token"
    r = client.get(f"/arena/battles/{mine['id']}/a.png", params={"token": theirs["token"]})
    assert r.status_code == 404  # a wrong token finds no battle for this voter
    r = client.get(f"/arena/battles/{mine['id']}/c.png", params={"token": mine["token"]})
    assert r.status_code == 400 and error_of(r)["param"] == "side"
    assert stored_votes(arena) == 0

    # the refusals used nothing up: each voter can still vote on their own battle
    assert vote(client, mine, "a").status_code == 200
    assert vote(other, theirs, "b").status_code == 200
    assert stored_votes(arena) == 2


def test_a_vote_must_name_a_known_outcome(client, pool):
    battle = new_battle(client)
    r = vote(client, battle, "draw")
    assert r.status_code == 400 and error_of(r)["param"] == "outcome"
    r = client.post(
        "/arena/api/votes", json={"battle_id": battle["id"], "token": battle["token"], "outcome": "a", "x": 1}
    )
    assert r.status_code == 400 and error_of(r)["code"] == "unknown_parameter"


# -- caps and flags ----------------------------------------------------------------------------


def test_daily_cap_answers_429_with_retry_after(client, arena, clock, pool, monkeypatch):
    monkeypatch.setattr(battles, "DAILY_CAP", 2)
    clock.now = 86400 * 20000 + 86400 - 600  # ten minutes before a UTC midnight
    for _ in range(2):
        battle_and_vote(client, "a")
    third = new_battle(client)
    r = vote(client, third, "b")
    assert r.status_code == 429
    assert error_of(r)["code"] == "vote_cap_reached" and error_of(r)["type"] == "requests"
    assert 0 < int(r.headers["retry-after"]) <= 600  # until the next UTC day
    assert stored_votes(arena) == 2
    # another voter is not affected, and the next day the first may vote again
    assert battle_and_vote(another_voter(client), "a")
    clock.now += 600
    assert vote(client, third, "b").status_code == 200


def test_a_too_fast_voter_is_kept_but_left_off_the_board(client, arena, clock, pool):
    clock.step = 0.4  # below FAST_SECONDS: no time to look at two images
    fast = another_voter(client)
    for k in range(battles.MIN_VOTES_TO_FLAG):
        battle_and_vote(fast, "a" if k % 2 else "b")
    row = voter_row(arena, voter_of(fast))
    assert row.flagged and "within" in row.reason
    clock.step = 3.0
    for _ in range(4):
        battle_and_vote(client, "a")
    assert not voter_row(arena, voter_of(client)).flagged
    assert stored_votes(arena, voter_of(fast)) == battles.MIN_VOTES_TO_FLAG  # kept in the database
    assert board(client)["votes"] == 4
    assert len(arena.votes(include_flagged=True)) == 4 + battles.MIN_VOTES_TO_FLAG


def test_a_few_fast_votes_do_not_flag(client, arena, clock, pool):
    clock.step = 0.4
    for _ in range(battles.MIN_VOTES_TO_FLAG - 1):
        battle_and_vote(client, "tie")
    assert not voter_row(arena, voter_of(client)).flagged
    assert board(client)["votes"] == battles.MIN_VOTES_TO_FLAG - 1


def test_a_voter_who_always_picks_a_is_flagged(client, arena, pool):
    always_a = another_voter(client)
    for _ in range(19):
        battle_and_vote(always_a, "a")
    assert not voter_row(arena, voter_of(always_a)).flagged  # 19 is not yet enough to judge
    battle_and_vote(always_a, "tie")  # ties say nothing about sides
    assert not voter_row(arena, voter_of(always_a)).flagged
    battle_and_vote(always_a, "a")
    row = voter_row(arena, voter_of(always_a))
    assert row.flagged and row.reason == "picked A in 20 of 20 decisive votes"
    for k in range(20):  # an honest voter picks both sides
        battle_and_vote(client, ("a", "b", "tie", "both_bad")[k % 4])
    assert not voter_row(arena, voter_of(client)).flagged
    assert stored_votes(arena) == 41
    assert board(client)["votes"] == 20


# -- categories --------------------------------------------------------------------------------


def test_per_category_boards_count_only_their_battles(client, arena, pool):
    voted = [new_battle(client) for _ in range(16)]
    for b in voted:
        assert vote(client, b, "a").status_code == 200
    prompts = [b["prompt"] for b in voted]
    assert board(client)["votes"] == 16
    for category in ("text rendering", "people and skin tones", "scenes", "objects"):
        expected = sum(category in categorize(p) for p in prompts)
        assert board(client, category)["votes"] == expected, category
        page = client.get("/arena/leaderboard", params={"category": category})
        assert page.status_code == 200
        assert f'category={category.replace(" ", "%20")}" aria-current="page"' in page.text
    # every prompt of the pool is in exactly one specific category
    assert (
        sum(board(client, c)["votes"] for c in ("text rendering", "people and skin tones", "scenes", "objects")) == 16
    )
    r = client.get("/arena/api/leaderboard", params={"category": "animals"})
    assert r.status_code == 400 and error_of(r)["param"] == "category" and error_of(r)["code"] == "invalid_value"


# -- live battles and the empty pool ---------------------------------------------------------


def test_a_live_battle_generates_both_images_for_the_prompt(client, arena):
    sign_up(client)
    battle = new_battle(client, "a blue cube on a wooden table")
    assert battle["prompt"] == "a blue cube on a wooden table"
    for side in ("a", "b"):
        r = client.get(battle["images"][side])
        assert r.status_code == 200 and set(png_chunks(r.content)) <= {"IHDR", "IDAT", "IEND"}
    with arena.db.session() as s:
        assert s.get(ArenaBattle, battle["id"]).source == "live"
    assert set(vote(client, battle, "b").json()["models"].values()) == set(MODELS)


def test_a_live_prompt_goes_through_moderation(client, arena):
    sign_up(client)
    r = client.post("/arena/api/battles", json={"prompt": "a nude portrait"})
    assert r.status_code == 400
    assert error_of(r)["code"] == "moderation_blocked"
    with arena.db.session() as s:
        assert s.scalar(select(func.count()).select_from(ArenaBattle)) == 0


def test_live_battles_have_their_own_daily_cap(client, arena, clock, pool, monkeypatch):
    monkeypatch.setattr(battles, "LIVE_DAILY_CAP", 1)
    sign_up(client)
    new_battle(client, "a green pear")
    r = client.post("/arena/api/battles", json={"prompt": "a yellow pear"})
    assert r.status_code == 429
    assert error_of(r)["code"] == "live_cap_reached"
    assert 0 < int(r.headers["retry-after"]) <= 86400
    assert new_battle(client)["prompt"] in POOL  # curated battles cost nothing: still open
    other = another_voter(client)
    sign_up(other)
    assert new_battle(other, "a yellow pear")["prompt"] == "a yellow pear"
    clock.now += 86400
    assert new_battle(client, "a yellow pear")["prompt"] == "a yellow pear"


def test_a_live_battle_that_fails_to_draw_does_not_count(client, arena, monkeypatch):
    monkeypatch.setattr(battles, "LIVE_DAILY_CAP", 1)
    browser = TestClient(client.app, raise_server_exceptions=False)  # sees the 500 as a browser would
    sign_up(browser)

    def broken(request):
        raise RuntimeError("the engine fell over")

    with monkeypatch.context() as m:
        m.setattr(arena.engine, "generate", broken)
        assert browser.post("/arena/api/battles", json={"prompt": "a green pear"}).status_code == 500
    assert new_battle(browser, "a green pear")["prompt"] == "a green pear"  # the failed one was given back
    r = browser.post("/arena/api/battles", json={"prompt": "a yellow pear"})
    assert r.status_code == 429 and error_of(r)["code"] == "live_cap_reached"


def test_battles_left_without_a_vote_are_swept_with_their_live_images(client, arena, clock, pool, monkeypatch):
    sign_up(client)
    kept = {"pool": new_battle(client), "live": new_battle(client, "a green pear")}
    for battle in kept.values():
        assert vote(client, battle, "a").status_code == 200
    left = {"pool": new_battle(client), "live": new_battle(client, "a yellow pear")}

    def files_of(battle: dict) -> list[Path]:
        with arena.db.session() as s:
            row = s.get_one(ArenaBattle, battle["id"])
            return [Path(s.get_one(StoredFile, f).path) for f in (row.file_a, row.file_b)]

    files = {name: files_of(b) for name, b in {**{"kept " + k: b for k, b in kept.items()}, **left}.items()}
    clock.now += 23 * 3600
    assert arena.sweep_unvoted(24) == 0  # a day has not passed: kept
    clock.now += 2 * 3600
    monkeypatch.setattr(battles, "SWEEP_CHUNK", 1)  # one battle per transaction: the loop goes on
    assert arena.sweep_unvoted(24) == 2
    assert not any(p.exists() for p in files["live"])  # the unvoted live battle's images went with it
    assert all(p.exists() for name in ("pool", "kept pool", "kept live") for p in files[name])
    with arena.db.session() as s:
        gone = select(func.count()).select_from(StoredFile).where(StoredFile.path.in_(map(str, files["live"])))
        assert s.scalar(gone) == 0
        assert s.scalar(select(func.count()).select_from(ArenaImage)) == len(pool) * len(MODELS)
    for battle in left.values():
        r = vote(client, battle, "a")
        assert r.status_code == 404 and error_of(r)["code"] == "battle_expired"
        assert client.get(battle["images"]["a"]).status_code == 404
    assert stored_votes(arena) == 2  # the voted ones and their figures stay
    assert all(client.get(b["images"]["a"]).status_code == 200 for b in kept.values())


def test_the_janitor_sweeps_on_the_real_clock_with_the_configured_hours(client, arena, clock, pool):
    from limner.server import janitor

    battle = new_battle(client)
    assert janitor.sweep_battles(client.app.state) == 0
    client.app.state.settings.arena_unvoted_hours = 1.0
    clock.now -= 2 * 3600  # the next battle is shown two hours ago
    old = new_battle(client)
    assert janitor.sweep_battles(client.app.state) == 1
    assert vote(client, old, "a").status_code == 404
    assert vote(client, battle, "a").status_code == 200


def test_a_curated_battle_needs_a_pool(client):
    r = client.post("/arena/api/battles")
    assert r.status_code == 400
    assert "seed-pool" in error_of(r)["message"]


def test_seed_pool_draws_each_prompt_once_per_model(client, arena, pool_images):
    steps = []
    assert arena.seed_pool(POOL[:2], progress=lambda phase, done, total: steps.append((done, total))) == 4
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert arena.seed_pool(POOL[:2]) == 0  # already there: nothing drawn again
    assert arena.seed_pool(POOL[:3], models=[MODELS[0]]) == 1
    with arena.db.session() as s:
        rows = s.execute(select(ArenaImage.prompt, ArenaImage.model, ArenaImage.file_id)).all()
        assert sorted((p, m) for p, m, _ in rows) == sorted(
            [(p, m) for p in POOL[:2] for m in MODELS] + [(POOL[2], MODELS[0])]
        )
        for prompt, model, file_id in rows:  # the same seeds as the session's pool: the same picture, marked
            stored = Image.open(Path(s.get(StoredFile, file_id).path))
            assert psnr(Image.open(io.BytesIO(pool_images[(prompt, model)])), stored) >= 38.0
    battle = new_battle(client)
    assert battle["prompt"] in POOL[:2]


# -- export ------------------------------------------------------------------------------------


def test_preference_export_writes_decisive_unflagged_pairs(client, arena, clock, pool, tmp_path):
    shown = []
    for outcome in ("a", "b", "tie", "both_bad", "b"):
        battle = new_battle(client)
        images = {side: client.get(battle["images"][side]).content for side in ("a", "b")}
        models = vote(client, battle, outcome).json()["models"]
        shown.append((battle, outcome, images, models))
    always_a = another_voter(client)
    for _ in range(20):
        battle_and_vote(always_a, "a")
    assert voter_row(arena, voter_of(always_a)).flagged

    out = tmp_path / "export"
    assert arena.export_preference_pairs(out) == 3
    rows = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    decisive = [(b, o, img, m) for b, o, img, m in shown if o in ("a", "b")]
    assert [r["battle_id"] for r in rows] == [b["id"] for b, *_ in decisive]
    for row, (battle, outcome, images, models) in zip(rows, decisive, strict=True):
        loser = "b" if outcome == "a" else "a"
        assert row["prompt"] == battle["prompt"]
        assert row["categories"] == categorize(battle["prompt"])
        assert (row["winner_model"], row["loser_model"]) == (models[outcome], models[loser])
        assert (out / row["winner"]).read_bytes() == images[outcome]
        assert (out / row["loser"]).read_bytes() == images[loser]
    # the pool's images are shared between battles: each is written once
    assert len(list((out / "images").iterdir())) == len({p for r in rows for p in (r["winner"], r["loser"])})
    # and `limner tune` reads exactly these: the flagged voter's 20 votes never reach a tune
    from limner.tune import load_pairs

    assert load_pairs(out, 16).prompts == [b["prompt"] for b, *_ in decisive]


# -- pages -----------------------------------------------------------------------------------


def test_the_pages_render(client, pool):
    assert 'href="/arena">Arena</a>' in client.get("/signin").text  # two models: the arena is in the menu
    page = client.get("/arena").text
    for outcome in ("a", "b", "tie", "both_bad"):
        assert f'data-outcome="{outcome}"' in page
    assert "/static/arena.js" in page
    empty = client.get("/arena/leaderboard")
    assert empty.status_code == 200 and "No votes yet" in empty.text
    for _ in range(3):
        battle_and_vote(client, "a")
    text = client.get("/arena/leaderboard").text
    assert all(name in text for name in MODELS)
    assert "95% interval" in text


def test_the_prompt_box_is_offered_to_accounts_only(client):
    page = client.get("/arena").text
    assert 'id="live-form"' not in page and 'href="/signin">Sign in</a> to battle' in page
    sign_up(client)
    page = client.get("/arena").text
    assert 'id="live-form"' in page and "to battle on a prompt of your own" not in page


def test_the_leaderboard_page_is_fast_with_thousands_of_votes(client, arena, pool):
    with arena.db.session() as s:
        files = {(p, m): f for p, m, f in s.execute(select(ArenaImage.prompt, ArenaImage.model, ArenaImage.file_id))}
        for k in range(4000):
            prompt = POOL[k % len(POOL)]
            a, b = MODELS if k % 3 else MODELS[::-1]
            s.add(
                ArenaBattle(
                    id=f"battle-bulk-{k}",
                    prompt=prompt,
                    categories=categorize(prompt),
                    model_a=a,
                    model_b=b,
                    file_a=files[(prompt, a)],
                    file_b=files[(prompt, b)],
                    source="pool",
                    voter=f"anon:bulk-{k % 50}",
                    outcome=("a", "b", "a", "tie")[k % 4],
                    voted_at=battles._utc(1_750_000_000 + k),
                )
            )
    client.get("/arena/leaderboard")  # warm the template cache
    start = time.perf_counter()
    r = client.get("/arena/leaderboard")
    elapsed = time.perf_counter() - start
    assert r.status_code == 200 and "4000 votes" in r.text
    assert elapsed < 1.0, f"{elapsed:.2f} s"


def test_a_pair_is_shown_every_prompt_of_the_pool_before_any_prompt_twice(client, arena, pool):
    """With the pairing read once per refresh (the default), battles shown since count at once:
    a voter who skips battles, or many at once, do not get the same prompt again and again."""
    unvoted = Counter(new_battle(client)["prompt"] for _ in pool)
    assert unvoted == {p: 1 for p in pool}
    shown = Counter()
    for _ in range(2 * len(pool)):
        battle = new_battle(client)
        shown[battle["prompt"]] += 1
        assert vote(client, battle, "tie").status_code == 200
    assert shown == {p: 2 for p in pool}


def test_the_pool_is_read_once_per_refresh_and_at_once_after_seeding(client, arena, pool, monkeypatch):
    new_battle(client)  # reads the pool
    reads = []
    real = arena.db.session
    monkeypatch.setattr(arena.db, "session", lambda: reads.append(1) or real())
    assert set(arena._curated()) == set(pool) and reads == []  # within the refresh: nothing read
    monkeypatch.undo()
    prompt = "a green frog, flat icon"
    arena.seed_pool([prompt], seed=7)
    assert prompt in arena._curated()  # seeding shows the new prompt at once


def test_an_image_carries_content_credentials_only_after_the_vote(client, pool):
    battle = new_battle(client)
    before = client.get(battle["images"]["a"]).content
    assert "caBX" not in png_chunks(before)  # nothing may hint at the model before the vote
    models = vote(client, battle, "a").json()["models"]
    after = client.get(battle["images"]["a"]).content
    report = credentials.read(after, "png", client.app.state.provenance.trusted_roots())
    assert report.valid and report.trusted and report.generator["model"] == models["a"]


def test_arena_images_carry_the_watermark_from_the_start(arena):
    """Drawn for the pool, each image is marked (its row says which model, for the operator only)
    before it is kept; the file itself still says nothing about the model."""
    prompt = "a green frog, flat icon"
    assert arena.seed_pool([prompt], seed=7) == len(MODELS)
    with arena.db.session() as s:
        marks = s.query(Mark).all()
        rows = s.query(ArenaImage).filter_by(prompt=prompt).all()
        kept = {im.model: Path(s.get_one(StoredFile, im.file_id).path).read_bytes() for im in rows}
    assert sorted(m.model for m in marks) == sorted(MODELS)
    assert {m.request_id for m in marks} == {"arena-pool"} and all(m.key_id is None for m in marks)
    for model, data in kept.items():
        assert "tEXt" not in png_chunks(data) and "caBX" not in png_chunks(data)
        plain = arena.engine.generate(GenerationRequest(prompt, seed=7, model=model))[0].image
        assert np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).tolist() != np.asarray(plain).tolist()


def test_pairing_reads_the_votes_once_per_refresh_not_once_per_battle(client, arena, pool, monkeypatch):
    reads = []
    votes = arena.votes
    monkeypatch.setattr(arena, "votes", lambda *a, **k: reads.append(1) or votes(*a, **k))
    for _ in range(5):
        battle_and_vote(client, "a")
    assert len(reads) == 1  # five battles asked for within the refresh: one read of every vote
    arena.pairing_refresh = 0.0
    battle_and_vote(client, "a")
    assert len(reads) == 2
    arena.pairing_refresh = 15.0
    rng = np.random.default_rng(0)
    arena._pair([*MODELS], rng)
    assert len(reads) == 2
    arena._pair([*MODELS, "painter-gamma"], rng)  # another set of candidates: its own pairing
    assert len(reads) == 3
