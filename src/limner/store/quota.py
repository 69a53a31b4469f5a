"""Per-key rate limits (images per minute) and daily quotas (images per UTC day).

A reservation is one conditional UPDATE per window, so concurrent requests can never spend
more than the limit: the database serialises the row updates and each re-checks the condition
(SQLite serialises writers; PostgreSQL re-evaluates the WHERE clause after a row lock).
A failed generation gives its reservation back.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from limner.errors import RateLimited
from limner.store import days
from limner.store.db import ApiKey


def _take(session: Session, key_id: int, n: int, bucket_col, used_col, limit_col, now_bucket: int) -> bool:
    """Add ``n`` to the window's counter if it stays within the limit; start a new window if the
    stored one is over. True when the images were reserved."""
    fresh = session.execute(  # type: ignore[attr-defined]  # UPDATE results carry rowcount
        update(ApiKey)
        .where(ApiKey.id == key_id, bucket_col != now_bucket, (limit_col.is_(None)) | (limit_col >= n))
        .values({bucket_col: now_bucket, used_col: n})
    ).rowcount
    if fresh:
        return True
    return bool(
        session.execute(  # type: ignore[attr-defined]
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                bucket_col == now_bucket,
                (limit_col.is_(None)) | (used_col + n <= limit_col),
            )
            .values({used_col: used_col + n})
        ).rowcount
    )


def reserve(session: Session, key: ApiKey, n: int, now: float | None = None) -> None:
    """Reserve ``n`` images for ``key`` in both windows, or raise RateLimited (nothing reserved)."""
    now = days.now() if now is None else now
    minute, day = days.index(days.MINUTE, now), days.today(now)
    if not _take(session, key.id, n, ApiKey.minute, ApiKey.used_minute, ApiKey.images_per_minute, minute):
        session.rollback()
        raise RateLimited(
            f"rate limit reached: {key.images_per_minute} images per minute for this key",
            retry_after=days.left(days.MINUTE, now),
        )
    if not _take(session, key.id, n, ApiKey.day, ApiKey.used_day, ApiKey.images_per_day, day):
        session.rollback()
        raise RateLimited(
            f"daily quota reached: {key.images_per_day} images per day for this key",
            retry_after=days.left(days.DAY, now),
        )
    session.commit()


def refund(session: Session, key: ApiKey, n: int, now: float | None = None) -> None:
    """Give back a reservation whose images were never made (same windows only)."""
    now = days.now() if now is None else now
    minute, day = days.index(days.MINUTE, now), days.today(now)
    session.execute(
        update(ApiKey).where(ApiKey.id == key.id, ApiKey.minute == minute).values(used_minute=ApiKey.used_minute - n)
    )
    session.execute(update(ApiKey).where(ApiKey.id == key.id, ApiKey.day == day).values(used_day=ApiKey.used_day - n))
    session.commit()


def headers(session: Session, key_id: int, now: float | None = None) -> dict[str, str]:
    """OpenAI's rate-limit headers for a key, after its request: the per-minute window as
    ``*-requests`` (Limner counts images: a request of n images uses n) and the per-day quota as
    ``*-images``; a window without a limit sends none."""
    now = days.now() if now is None else now
    key = session.get(ApiKey, key_id)
    if key is None:
        return {}
    out: dict[str, str] = {}
    for kind, limit, bucket, used, seconds in (
        ("requests", key.images_per_minute, key.minute, key.used_minute, days.MINUTE),
        ("images", key.images_per_day, key.day, key.used_day, days.DAY),
    ):
        if limit is None:
            continue
        spent = used if bucket == days.index(seconds, now) else 0
        out[f"x-ratelimit-limit-{kind}"] = str(limit)
        out[f"x-ratelimit-remaining-{kind}"] = str(max(0, limit - spent))
        out[f"x-ratelimit-reset-{kind}"] = _duration(days.left(seconds, now))
    return out


def _duration(seconds: int) -> str:
    """As OpenAI writes resets: "42s", "6m0s", "23h59m0s"."""
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + f"{s}s"
