"""The arena under attack by parallel requests, on SQLite and on PostgreSQL: one voter's 20
concurrent votes all count, caps hold, a battle takes one vote, an address starts only so many
battles an hour, and live battles (which cost two generations each) need an account whose daily
cap holds under a burst and survives a new cookie."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from arena_helpers import error_of, new_battle, sign_in, sign_up, vote
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from limner.arena import battles
from limner.server.deps import address_block
from limner.store import days
from limner.store.db import ArenaBattle, ArenaVoter

pytestmark = pytest.mark.hostile
BURST = 20


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, settings):
    """Every test here runs once per database (PostgreSQL skips without a test server)."""
    if request.param == "postgresql":
        settings.database_url = request.getfixturevalue("pg_url")
    return settings


def burst(fn, args: list) -> list:
    """Call ``fn`` on every argument at once, from BURST threads; → the results in order."""
    with ThreadPoolExecutor(BURST) as ex:
        return list(ex.map(fn, args))


def voter_row(arena, voter: str) -> ArenaVoter:
    with arena.db.session() as s:
        row = s.get_one(ArenaVoter, voter)
        s.expunge(row)
        return row


def voted(arena) -> int:
    with arena.db.session() as s:
        return s.scalar(select(func.count()).select_from(ArenaBattle).where(ArenaBattle.outcome.is_not(None)))


def test_concurrent_votes_by_one_voter_all_count(client, arena, clock, pool, tmp_path):
    clock.step = 0.0  # time moves only where the test moves it
    shown = [new_battle(client) for _ in range(BURST // 2)]
    clock.now += 10
    shown += [new_battle(client) for _ in range(BURST // 2)]
    clock.now += 1  # the first half waited 11 s for their vote, the second half 1 s: too fast
    outcomes = [("a", "b", "tie", "a")[k % 4] for k in range(BURST)]

    answers = burst(lambda k: vote(client, shown[k], outcomes[k]), list(range(BURST)))
    assert [r.status_code for r in answers] == [200] * BURST, [r.text for r in answers if r.status_code != 200]
    assert voted(arena) == BURST
    row = voter_row(arena, "anon:" + client.cookies["limner_voter"])
    assert (row.votes, row.votes_day, row.picked_a, row.picked_b, row.fast) == (BURST, BURST, 10, 5, 10)
    # half of them too fast: flagged, so voting in parallel did not dodge the flag
    assert (
        row.flagged
        and row.reason == f"10 of {BURST} votes cast within {battles.FAST_SECONDS} s of the battle appearing"
    )
    assert client.get("/arena/api/leaderboard").json()["votes"] == 0
    assert arena.export_preference_pairs(tmp_path / "pairs") == 0


def test_a_voter_who_always_picks_a_is_flagged_in_parallel_too(client, arena, clock, pool):
    shown = [new_battle(client) for _ in range(BURST)]
    answers = burst(lambda b: vote(client, b, "a"), shown)
    assert [r.status_code for r in answers] == [200] * BURST
    row = voter_row(arena, "anon:" + client.cookies["limner_voter"])
    assert (row.votes, row.picked_a, row.fast) == (BURST, BURST, 0)
    assert row.flagged and row.reason == f"picked A in {BURST} of {BURST} decisive votes"


def test_the_daily_vote_cap_holds_under_concurrent_votes(client, arena, clock, pool, monkeypatch):
    monkeypatch.setattr(battles, "DAILY_CAP", 7)
    shown = [new_battle(client) for _ in range(BURST)]
    answers = burst(lambda b: vote(client, b, "tie"), shown)
    assert sorted(r.status_code for r in answers) == [200] * 7 + [429] * (BURST - 7)
    assert {error_of(r)["code"] for r in answers if r.status_code == 429} == {"vote_cap_reached"}
    assert voted(arena) == 7
    row = voter_row(arena, "anon:" + client.cookies["limner_voter"])
    assert (row.votes, row.votes_day) == (7, 7)


def test_one_battle_takes_one_vote_under_concurrency(client, arena, clock, pool):
    battle = new_battle(client)
    answers = burst(lambda outcome: vote(client, battle, outcome), ["a", "b"] * (BURST // 2))
    assert sorted(r.status_code for r in answers) == [200] + [409] * (BURST - 1)
    winner = next(r.json()["outcome"] for r in answers if r.status_code == 200)
    assert voted(arena) == 1
    row = voter_row(arena, "anon:" + client.cookies["limner_voter"])
    assert (row.votes, row.votes_day, row.picked_a + row.picked_b) == (1, 1, 1)
    assert (row.picked_a, row.picked_b) == ((1, 0) if winner == "a" else (0, 1))


def test_battles_per_address_hold_under_a_burst_and_a_new_cookie_does_not_reset_them(client, arena, pool, monkeypatch):
    client.app.state.settings.arena_battles_per_address = 5
    answers = burst(lambda _: client.post("/arena/api/battles", json={}), range(BURST))
    assert sorted(r.status_code for r in answers) == [200] * 5 + [429] * (BURST - 5), [r.text for r in answers]
    refused = next(r for r in answers if r.status_code == 429)
    assert error_of(refused)["code"] == "battle_rate_limited" and "this hour" in error_of(refused)["message"]
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    with arena.db.session() as s:
        assert s.scalar(select(func.count()).select_from(ArenaBattle)) == 5
    client.cookies.clear()  # a new anonymous voter from the same address
    assert client.post("/arena/api/battles", json={}).status_code == 429
    later = days.now() + 3600
    monkeypatch.setattr(days, "now", lambda: later)  # the next hour
    assert new_battle(client)["prompt"]


def test_an_ipv6_client_is_counted_by_its_64():  # by every per-address limit: battles, sign-in, sign-up
    assert address_block("2001:db8::1") == address_block("2001:db8::ffff:1") == "2001:db8::/64"
    assert address_block("2001:db8:0:1::1") == "2001:db8:0:1::/64"
    assert address_block("192.0.2.7") == "192.0.2.7" and address_block("testclient") == "testclient"


def test_the_live_cap_holds_under_concurrent_requests(client, arena, monkeypatch):
    monkeypatch.setattr(battles, "LIVE_DAILY_CAP", 2)
    sign_up(client)
    prompts = [f"a {colour} pear" for colour in ("green", "yellow", "red", "brown", "blue", "pink")]
    answers = burst(lambda p: client.post("/arena/api/battles", json={"prompt": p}), prompts)
    assert sorted(r.status_code for r in answers) == [200] * 2 + [429] * 4, [r.text for r in answers]
    assert {error_of(r)["code"] for r in answers if r.status_code == 429} == {"live_cap_reached"}
    with arena.db.session() as s:
        assert s.scalar(select(func.count()).select_from(ArenaBattle).where(ArenaBattle.source == "live")) == 2


def test_live_battles_need_an_account_and_its_cap_outlives_the_cookies(client, arena, pool, monkeypatch):
    monkeypatch.setattr(battles, "LIVE_DAILY_CAP", 1)
    r = client.post("/arena/api/battles", json={"prompt": "a green pear"})
    assert r.status_code == 401 and error_of(r)["code"] == "sign_in_required"
    assert "sign in" in error_of(r)["message"].lower()
    client.cookies.clear()  # a fresh anonymous voter is no better off
    r = client.post("/arena/api/battles", json={"prompt": "a green pear"})
    assert r.status_code == 401 and error_of(r)["code"] == "sign_in_required"
    assert new_battle(client)["id"]  # curated battles stay open without an account

    email = sign_up(client)
    assert new_battle(client, "a green pear")["prompt"] == "a green pear"
    r = client.post("/arena/api/battles", json={"prompt": "a yellow pear"})
    assert r.status_code == 429 and error_of(r)["code"] == "live_cap_reached"
    fresh = TestClient(client.app)  # the same account from a browser with no cookies at all
    sign_in(fresh, email)
    r = fresh.post("/arena/api/battles", json={"prompt": "a yellow pear"})
    assert r.status_code == 429 and error_of(r)["code"] == "live_cap_reached"
    with arena.db.session() as s:
        assert s.scalar(select(func.count()).select_from(ArenaBattle).where(ArenaBattle.source == "live")) == 1
