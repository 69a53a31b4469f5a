"""What an Image Creator account may spend: boosts (a daily allowance of fast-lane jobs), jobs per
UTC day, and jobs waiting or running at once. Each is a counter on the account's row, moved by one
conditional UPDATE, so parallel presses of "Create" can never overspend; whatever a job did not
deliver is given back when it ends."""

from __future__ import annotations

from typing import cast

from sqlalchemy import CursorResult, Update, update
from sqlalchemy.orm import Session

from limner.store import days
from limner.store.days import today
from limner.store.db import User


def refill_in_seconds() -> int:
    return days.left(days.DAY)


def boosts_left(user: User, allowance: int) -> int:
    return allowance if user.boost_day != today() else max(0, allowance - user.boosts_used)


def _rows(session: Session, statement: Update) -> int:
    """How many rows an UPDATE changed."""
    return cast(CursorResult, session.execute(statement)).rowcount


def take_boost(session: Session, user_id: int, allowance: int) -> bool:
    """Spend one boost if any is left today."""
    if allowance < 1:
        return False
    day = today()
    first_today = update(User).where(User.id == user_id, User.boost_day != day).values(boost_day=day, boosts_used=1)
    if _rows(session, first_today):
        return True
    another = (
        update(User)
        .where(User.id == user_id, User.boost_day == day, User.boosts_used < allowance)
        .values(boosts_used=User.boosts_used + 1)
    )
    return bool(_rows(session, another))


def give_back_boost(session: Session, user_id: int) -> None:
    session.execute(
        update(User)
        .where(User.id == user_id, User.boost_day == today(), User.boosts_used > 0)
        .values(boosts_used=User.boosts_used - 1)
    )


def take_job(session: Session, user_id: int, daily: int, active: int) -> str | None:
    """Count one more job against today's allowance and the account's jobs in flight; → None if
    both allow it, else what stands in the way (nothing is counted then)."""
    more = update(User).where(User.id == user_id, User.active_jobs < active).values(active_jobs=User.active_jobs + 1)
    if not _rows(session, more):
        return f"you have {active} jobs waiting or running already; wait for one to finish"
    day = today()
    first_today = update(User).where(User.id == user_id, User.jobs_day != day).values(jobs_day=day, jobs_today=1)
    another = (
        update(User)
        .where(User.id == user_id, User.jobs_day == day, User.jobs_today < daily)
        .values(jobs_today=User.jobs_today + 1)
    )
    if _rows(session, first_today) or _rows(session, another):
        return None
    session.execute(update(User).where(User.id == user_id).values(active_jobs=User.active_jobs - 1))
    return f"you have made {daily} sets of images today, the daily allowance; it refills at midnight UTC"


def end_job(session: Session, user_id: int, delivered: bool, boosted: bool, created_day: int) -> None:
    """A job left the account's jobs in flight; if it delivered nothing, its place in the day's
    allowance (and its boost) come back — when that day is still today."""
    session.execute(
        update(User).where(User.id == user_id, User.active_jobs > 0).values(active_jobs=User.active_jobs - 1)
    )
    if delivered or created_day != today():
        return
    session.execute(
        update(User)
        .where(User.id == user_id, User.jobs_day == created_day, User.jobs_today > 0)
        .values(jobs_today=User.jobs_today - 1)
    )
    if boosted:
        give_back_boost(session, user_id)
