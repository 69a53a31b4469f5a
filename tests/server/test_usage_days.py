"""``limner usage`` counts whole UTC days: "the last 2 days" is yesterday and today, from midnight."""

from __future__ import annotations

import datetime as dt

from limner.store import days
from limner.store.db import Database, Usage
from limner.store.usage import usage_by_day


def test_usage_by_day_counts_whole_utc_days_today_included(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'limner.db'}")
    db.migrate()
    today = days.start_of(days.today())
    at = {
        "two days ago, late": today - dt.timedelta(days=1, minutes=1),
        "yesterday, just after midnight": today - dt.timedelta(days=1) + dt.timedelta(minutes=1),
        "today": today + dt.timedelta(seconds=1),
    }
    with db.session() as s:
        for k, when in enumerate(at.values()):
            s.add(Usage(request_id=f"r{k}", created=when, endpoint="generations", model="m", images=k + 1, status="ok"))
    with db.session() as s:
        two = usage_by_day(s, 2)
        three = usage_by_day(s, 3)
    assert [r.images for r in two] == [2, 3]  # a rolling 48 hours would also take the one before midnight
    assert [r.images for r in three] == [1, 2, 3]
    assert days.day_of(days.start_of(days.today())) == days.today()
