"""API keys: shown once at creation, stored only as a salted SHA-256 digest, checked in
constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from limner.store.db import ApiKey

PREFIX = "lim-"
LOOKUP = 8  # characters after the prefix that are stored in clear to find the row


def _digest(salt: str, key: str) -> str:
    return hashlib.sha256((salt + key).encode()).hexdigest()


def create_key(
    session: Session,
    name: str,
    images_per_minute: int | None = None,
    images_per_day: int | None = None,
    size_policy: str | None = None,
) -> tuple[str, ApiKey]:
    """A new key (returned in clear exactly once) and its row."""
    key = PREFIX + secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    row = ApiKey(
        name=name,
        prefix=key[len(PREFIX) : len(PREFIX) + LOOKUP],
        salt=salt,
        digest=_digest(salt, key),
        images_per_minute=images_per_minute,
        images_per_day=images_per_day,
        size_policy=size_policy,
    )
    session.add(row)
    session.flush()
    return key, row


def find_key(session: Session, key: str) -> ApiKey | None:
    """The live key row matching ``key``, or None. Every candidate is compared in constant time."""
    if not key.startswith(PREFIX) or len(key) < len(PREFIX) + LOOKUP:
        return None
    found = None
    rows = session.scalars(select(ApiKey).where(ApiKey.prefix == key[len(PREFIX) : len(PREFIX) + LOOKUP]))
    for row in rows:
        if hmac.compare_digest(row.digest, _digest(row.salt, key)) and not row.revoked:
            found = row
    return found


def revoke(session: Session, key_id: int) -> bool:
    row = session.get(ApiKey, key_id)
    if row is None:
        return False
    row.revoked = True
    return True
