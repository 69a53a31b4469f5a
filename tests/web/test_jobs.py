"""Boosts: the daily fast-lane allowance (``limner.store.allowances``)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select
from web_helpers import new_email

from limner.store import allowances as jobs
from limner.store.allowances import boosts_left, give_back_boost, take_boost
from limner.store.db import Database, User


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'limner.db'}")
    db.migrate()
    yield db
    db.engine.dispose()


def new_user(db: Database) -> int:
    with db.session() as s:
        user = User(email=new_email(), password_hash="-")
        s.add(user)
        s.flush()
        return user.id


def left(db: Database, user_id: int, allowance: int) -> int:
    with db.session() as s:
        return boosts_left(s.get(User, user_id), allowance)


def take(db: Database, user_id: int, allowance: int) -> bool:
    with db.session() as s:
        return take_boost(s, user_id, allowance)


def test_boosts_count_down_to_zero_and_come_back_the_next_day(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    user = new_user(db)
    assert left(db, user, 3) == 3
    assert [take(db, user, 3) for _ in range(4)] == [True, True, True, False]
    assert left(db, user, 3) == 0
    with db.session() as s:
        give_back_boost(s, user)  # a fast job that failed
    assert left(db, user, 3) == 1
    day = jobs.today()
    monkeypatch.setattr(jobs, "today", lambda: day + 1)
    assert left(db, user, 3) == 3
    assert take(db, user, 3)
    assert left(db, user, 3) == 2
    with db.session() as s:
        assert s.scalar(select(User.boost_day).where(User.id == user)) == day + 1


def test_no_allowance_means_the_free_lane(db: Database) -> None:
    user = new_user(db)
    assert not take(db, user, 0)
    assert left(db, user, 0) == 0


def test_concurrent_requests_never_spend_more_than_the_allowance(db: Database) -> None:
    user = new_user(db)
    with ThreadPoolExecutor(8) as pool:
        taken = list(pool.map(lambda _: take(db, user, 5), range(24)))
    assert taken.count(True) == 5
    assert left(db, user, 5) == 0
