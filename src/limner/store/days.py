"""UTC windows — minutes, hours, days — for every limit that resets: quotas, allowances, attempt
counters, the arena's caps. One place for the arithmetic, so they all reset at the same instant."""

from __future__ import annotations

import datetime as dt
import time

MINUTE, HOUR, DAY = 60, 3600, 86400
EPOCH = dt.datetime(1970, 1, 1)  # the database keeps naive UTC times


def now() -> float:
    return time.time()


def index(seconds: int, at: float | None = None) -> int:
    """Which window of ``seconds`` the instant ``at`` (default: now) falls in (e.g. the UTC day)."""
    return int((now() if at is None else at) // seconds)


def today(at: float | None = None) -> int:
    return index(DAY, at)


def left(seconds: int, at: float | None = None) -> int:
    """Whole seconds until the current window of ``seconds`` ends (at least 1)."""
    return max(1, seconds - int((now() if at is None else at) % seconds))


def day_of(when: dt.datetime) -> int:
    """The UTC day of a time the database stored."""
    return int((when - EPOCH).total_seconds() // DAY)


def start_of(day: int) -> dt.datetime:
    """When UTC day ``day`` began, as the database stores times."""
    return EPOCH + dt.timedelta(days=day)
