"""API keys: only a salted hash is stored, comparison is constant-time, revocation is immediate."""

from __future__ import annotations

import hashlib
import hmac

import openai
import pytest
from api_helpers import openai_client
from sqlalchemy import select

from limner.store import keys
from limner.store.db import ApiKey, Database


def test_only_a_salted_hash_is_stored(client, settings, make_key):
    secrets = [make_key("one"), make_key("two")]
    # use both keys, so that every code path that touches them has run
    for key in secrets:
        assert client.get("/v1/models", headers={"api-key": key}).status_code == 200
    with client.app.state.db.session() as s:
        rows = list(s.scalars(select(ApiKey).order_by(ApiKey.id)))
    for key, row in zip(secrets, rows, strict=True):
        assert row.digest == hashlib.sha256((row.salt + key).encode()).hexdigest()
        assert key not in (row.digest, row.salt, row.prefix)
        assert key.startswith("lim-" + row.prefix) and len(row.prefix) == 8
    assert rows[0].salt != rows[1].salt
    client.app.state.db.engine.dispose()  # let SQLite fold its write-ahead log into the file
    stored = b"".join(p.read_bytes() for p in settings.data_dir.glob("limner.db*"))
    assert stored  # the database is there …
    for key in secrets:  # … and the keys are not, in any form an attacker could reuse
        assert key.encode() not in stored
        assert key[len("lim-") :].encode() not in stored


def test_keys_are_compared_in_constant_time(client, key, monkeypatch):
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keys.hmac, "compare_digest", spy)
    assert client.get("/v1/models", headers={"api-key": key}).status_code == 200
    assert len(calls) == 1
    # a key with the same lookup prefix but another secret reaches the comparison, and fails it
    forged = key[:12] + ("A" if key[12] != "A" else "B") + key[13:]
    assert client.get("/v1/models", headers={"api-key": forged}).status_code == 401
    assert len(calls) == 2


def test_key_shape_checked_before_lookup(client, monkeypatch):
    monkeypatch.setattr(keys.hmac, "compare_digest", pytest.fail)
    for bad in ("", "lim-", "lim-short", "sk-" + "a" * 40, "Bearer"):
        r = client.get("/v1/models", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401


def test_revoked_key_is_refused_at_once(client, key, oai):
    assert oai.models.list().data
    with client.app.state.db.session() as s:
        row = keys.find_key(s, key)
        assert keys.revoke(s, row.id)
    with pytest.raises(openai.AuthenticationError):
        oai.models.list()
    with pytest.raises(openai.AuthenticationError):
        oai.images.generate(prompt="a red apple")


def test_revoke_unknown_id(client):
    with client.app.state.db.session() as s:
        assert keys.revoke(s, 999) is False


def test_other_keys_keep_working(client, make_key):
    a, b = make_key("a"), make_key("b")
    with client.app.state.db.session() as s:
        keys.revoke(s, keys.find_key(s, a).id)
    assert openai_client(client, b).models.list().data


def test_key_round_trip_without_the_app(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'k.db'}")
    db.migrate()
    with db.session() as s:
        key, row = keys.create_key(s, "ci", images_per_minute=3, images_per_day=9)
        key_id = row.id
    with db.session() as s:
        found = keys.find_key(s, key)
        assert found is not None and found.id == key_id
        assert (found.images_per_minute, found.images_per_day) == (3, 9)
        assert keys.find_key(s, key + "x") is None
    db.engine.dispose()
