"""The watermark's payload ↔ the database: each marked image gets a ``marks`` row, and the mark
carries that row's id enciphered under the server's secret (a 32-bit Feistel permutation), so
the payload is meaningless without the operator's secret and database, and consecutive images do
not carry consecutive numbers."""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import select
from sqlalchemy.orm import Session

from limner.errors import LimnerError
from limner.store.db import ApiKey, Mark, User

ROUNDS = 4


def _round(key: bytes, i: int, half: int) -> int:
    return int.from_bytes(hmac.new(key, bytes([i]) + half.to_bytes(2, "big"), hashlib.sha256).digest()[:2], "big")


class Cipher:
    """A keyed permutation of 32-bit numbers (a balanced Feistel network, HMAC-SHA256 rounds)."""

    def __init__(self, secret: str):
        self.key = hmac.new(secret.encode(), b"limner watermark payload", hashlib.sha256).digest()

    def encrypt(self, n: int) -> int:
        if not 0 <= n < 2**32:
            raise LimnerError(f"the watermark ledger is full: mark id {n} does not fit in 32 bits")
        left, right = n >> 16, n & 0xFFFF
        for i in range(ROUNDS):
            left, right = right, left ^ _round(self.key, i, right)
        return (left << 16) | right

    def decrypt(self, n: int) -> int:
        left, right = n >> 16, n & 0xFFFF
        for i in reversed(range(ROUNDS)):
            left, right = right ^ _round(self.key, i, left), left
        return (left << 16) | right


def register(
    session: Session,
    *,
    model: str,
    request_id: str,
    key_id: int | None,
    user_id: int | None,
    seed: int | None,
    fingerprint: str | None = None,
) -> int:
    """The ``marks`` row of one image; → its id (what the payload enciphers). A picture the same
    key or account made before (same ``fingerprint``) keeps its first row, so a seed still
    reproduces the same pixels, mark included; its row says when it was first made."""
    if fingerprint is not None:
        found = session.scalars(select(Mark.id).where(Mark.fingerprint == fingerprint).limit(1)).first()
        if found is not None:
            return found
    row = Mark(
        model=model[:200], request_id=request_id[:64], key_id=key_id, user_id=user_id, seed=seed,
        fingerprint=fingerprint,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row.id


def resolve(session: Session, cipher: Cipher, payload: int) -> dict | None:
    """What a payload stands for — for the operator's eyes only — or None if no row has it."""
    row = session.get(Mark, cipher.decrypt(payload))
    if row is None:
        return None
    key = session.get(ApiKey, row.key_id) if row.key_id is not None else None
    user = session.get(User, row.user_id) if row.user_id is not None else None
    return {
        "mark_id": row.id,
        "created": row.created.isoformat() + "Z",
        "model": row.model,
        "request_id": row.request_id,
        "seed": row.seed,
        "key": {"id": key.id, "name": key.name} if key is not None else None,
        "account": {"id": user.id, "email": user.email} if user is not None else None,
    }
