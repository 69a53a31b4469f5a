"""Usage per API key and day: what `limner usage` prints and `--json` hands to a billing script."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from limner.store.days import start_of, today
from limner.store.db import ApiKey, Usage


@dataclass(frozen=True)
class DayUsage:
    day: str  # UTC date, YYYY-MM-DD
    key: str | None  # the key's name; None for the Image Creator and the arena
    key_id: int | None
    requests: int
    images: int
    megapixels: float
    seconds: float
    failed: int  # requests that did not end "ok"

    def as_dict(self) -> dict:
        return asdict(self)


def usage_by_day(session: Session, days: int) -> list[DayUsage]:
    """One row per UTC day and key over the last ``days`` UTC days (today included), oldest first."""
    since = start_of(today() - (days - 1))
    day = func.date(Usage.created)
    q = (
        select(
            day,
            ApiKey.name,
            Usage.key_id,
            func.count(Usage.id),
            func.sum(Usage.images),
            func.sum(Usage.pixels),
            func.sum(Usage.seconds),
            func.sum(func.cast(Usage.status != "ok", type_=Usage.images.type)),
        )
        .join(ApiKey, ApiKey.id == Usage.key_id, isouter=True)
        .where(Usage.created >= since)
        .group_by(day, ApiKey.name, Usage.key_id)
        .order_by(day, Usage.key_id)
    )
    return [
        DayUsage(
            day=str(d),
            key=name,
            key_id=key_id,
            requests=int(reqs),
            images=int(imgs or 0),
            megapixels=round(float(px or 0) / 1e6, 6),  # PostgreSQL sums to Decimal
            seconds=round(float(secs or 0), 3),
            failed=int(failed or 0),
        )
        for d, name, key_id, reqs, imgs, px, secs, failed in session.execute(q)
    ]
