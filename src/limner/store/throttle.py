"""Attempt counters for sign-in, sign-up and arena battles: per account and per client address,
in fixed windows, kept in the database (so several server processes share them) and moved in
single statements (an upsert, a conditional read), so parallel attempts cannot slip past a limit.

A counter is consulted *before* the password hash is computed: a locked-out guess costs the
server nothing."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import case, delete, select
from sqlalchemy.orm import Session

from limner.store import days
from limner.store.db import Throttle, dialect_insert


@dataclass(frozen=True)
class Limit:
    what: str  # "signin-account", "signin-address", "signup-address", "battles-address"
    attempts: int  # allowed per window
    window_s: int


def _window(limit: Limit, now: float) -> int:
    """The current window, as the Unix time it began."""
    return int(now // limit.window_s) * limit.window_s


def _left(limit: Limit, now: float) -> int:
    """Seconds until the current window ends (at least one)."""
    return max(1, _window(limit, now) + limit.window_s - int(now))


def minutes(seconds: int) -> str:
    """A wait in words, rounded to whole minutes (at least one): "3 minutes"."""
    n = max(1, round(seconds / 60))
    return f"{n} minute{'s' * (n != 1)}"


def _key(limit: Limit, subject: str) -> str:
    """Subjects (emails, addresses) are stored as digests, not in clear."""
    return f"{limit.what}:{hashlib.sha256(subject.strip().lower().encode()).hexdigest()[:40]}"


def retry_after(session: Session, limit: Limit, subject: str, now: float | None = None) -> int | None:
    """Seconds until ``subject`` may try again, or None if it may now."""
    now = days.now() if now is None else now
    window = _window(limit, now)
    row = session.execute(
        select(Throttle.window, Throttle.count.label("attempts")).where(Throttle.key == _key(limit, subject))
    ).first()
    if row is None or row.window != window or row.attempts < limit.attempts:
        return None
    return _left(limit, now)


def count(session: Session, limit: Limit, subject: str, now: float | None = None) -> int:
    """One more attempt in the current window (a new window starts the count again); → the
    window's attempts, this one included."""
    now = days.now() if now is None else now
    window = _window(limit, now)
    insert = dialect_insert(session, Throttle).values(key=_key(limit, subject), window=window, count=1)
    return session.execute(
        insert.on_conflict_do_update(
            index_elements=["key"],
            set_={"count": case((Throttle.window == window, Throttle.count + 1), else_=1), "window": window},
        ).returning(Throttle.count)
    ).scalar_one()


def take(session: Session, limit: Limit, subject: str, now: float | None = None) -> int | None:
    """Count this attempt, then say whether it was within the limit: None if so, else the seconds
    until the window ends. Counted first, in one statement, so of parallel attempts at the last
    place exactly one gets it (a refused attempt counts too: hammering does not reopen the window)."""
    now = days.now() if now is None else now
    if count(session, limit, subject, now) <= limit.attempts:
        return None
    return _left(limit, now)


def clear(session: Session, limit: Limit, subject: str) -> None:
    session.execute(delete(Throttle).where(Throttle.key == _key(limit, subject)))
