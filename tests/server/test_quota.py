"""Per-key rate limits and daily quotas: exact under concurrency, refunded on failure, recorded."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from api_helpers import error_of, openai_client
from sqlalchemy import select

from limner.store import days
from limner.store.db import ApiKey, Usage

GEN = "/v1/images/generations"
BODY = {"prompt": "a red apple", "num_inference_steps": 1}


def _burst(client, key: str, count: int = 20) -> list:
    def one(_: int):
        return client.post(GEN, json=BODY, headers={"Authorization": f"Bearer {key}"})

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


@pytest.mark.parametrize("window", ["images_per_day", "images_per_minute"])
def test_concurrent_requests_never_exceed_the_limit(client, make_key, monkeypatch, window):
    # one fixed instant, so a minute boundary during the burst cannot open a fresh window
    monkeypatch.setattr(days, "now", lambda: 1_800_000_030.0)
    key = make_key(**{window: 7})
    responses = _burst(client, key)
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 7 + [429] * 13
    for r in responses:
        if r.status_code == 429:
            err = error_of(r)
            assert err["type"] == "requests" and err["code"] == "rate_limit_exceeded"
            expected = 30 if window == "images_per_minute" else 86400 - 1_800_000_030 % 86400
            assert int(r.headers["Retry-After"]) == expected
    with client.app.state.db.session() as s:
        row = s.scalars(select(ApiKey)).one()
        assert (row.used_day, row.used_minute) == (7, 7)


def test_openai_sees_rate_limit_error(client, make_key):
    oai = openai_client(client, make_key(images_per_minute=2))
    oai.images.generate(prompt="a red apple", n=2, extra_body={"num_inference_steps": 1})
    with pytest.raises(openai.RateLimitError) as e:
        oai.images.generate(prompt="a red apple", extra_body={"num_inference_steps": 1})
    assert e.value.status_code == 429 and e.value.body["code"] == "rate_limit_exceeded"
    assert 1 <= int(e.value.response.headers["retry-after"]) <= 60


def test_n_counts_images_not_requests(client, make_key):
    key = make_key(images_per_day=5)
    headers = {"api-key": key}
    assert client.post(GEN, json={**BODY, "n": 3}, headers=headers).status_code == 200
    r = client.post(GEN, json={**BODY, "n": 3}, headers=headers)
    assert r.status_code == 429 and "5 images per day" in error_of(r)["message"]
    assert client.post(GEN, json={**BODY, "n": 2}, headers=headers).status_code == 200


def test_streams_are_limited_with_a_status(client, make_key):
    key = make_key(images_per_day=1)
    headers = {"api-key": key}
    assert client.post(GEN, json={**BODY, "stream": True}, headers=headers).status_code == 200
    r = client.post(GEN, json={**BODY, "stream": True}, headers=headers)
    assert r.status_code == 429 and r.headers["Retry-After"]


def test_windows_roll_over(client, make_key, monkeypatch):
    now = [1_800_000_000.0]  # a minute boundary
    monkeypatch.setattr(days, "now", lambda: now[0])
    key = make_key(images_per_minute=1, images_per_day=2)
    headers = {"api-key": key}
    assert client.post(GEN, json=BODY, headers=headers).status_code == 200
    assert client.post(GEN, json=BODY, headers=headers).status_code == 429
    now[0] += 60  # next minute: the rate limit has room, the day has one image left
    assert client.post(GEN, json=BODY, headers=headers).status_code == 200
    now[0] += 60
    r = client.post(GEN, json=BODY, headers=headers)
    assert r.status_code == 429 and "per day" in error_of(r)["message"]
    now[0] += 86400  # next UTC day
    assert client.post(GEN, json=BODY, headers=headers).status_code == 200


def test_rejected_requests_reserve_nothing(client, make_key):
    key = make_key(images_per_day=1)
    headers = {"api-key": key}
    for bad in ({"prompt": "a nude"}, {"prompt": "x", "size": "64x64"}, {"prompt": "x", "n": 0}):
        assert client.post(GEN, json=bad, headers=headers).status_code == 400
    assert client.post(GEN, json=BODY, headers=headers).status_code == 200


def test_failed_generation_refunds(client, make_key, monkeypatch):
    key = make_key(images_per_day=2)
    headers = {"api-key": key}
    engine = client.app.state.engine

    def fail(request, timeout=None):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(engine, "generate", fail)
    for _ in range(3):
        assert client.post(GEN, json={**BODY, "n": 2}, headers=headers).status_code == 500
    monkeypatch.undo()
    assert client.post(GEN, json={**BODY, "n": 2}, headers=headers).status_code == 200


def test_usage_rows_are_recorded(client, make_key):
    key = make_key("recorded")
    headers = {"api-key": key, "x-request-id": "usage-1"}
    assert client.post(GEN, json={**BODY, "n": 2}, headers=headers).status_code == 200
    assert (
        client.post(GEN, json={**BODY, "n": 1, "size": "32x32"}, headers={**headers, "x-request-id": "u2"}).status_code
        == 200
    )
    with client.app.state.db.session() as s:
        rows = list(s.scalars(select(Usage).order_by(Usage.id)))
    assert [(u.request_id, u.images, u.pixels, u.status) for u in rows] == [
        ("usage-1", 2, 2 * 128 * 128, "ok"),
        ("u2", 1, 32 * 32, "ok"),
    ]
    assert all(u.seconds > 0 and u.model == "tiny" and u.endpoint == "generations" for u in rows)
    assert rows[0].key_id is not None


def test_unlimited_key(client, key):
    assert all(r.status_code == 200 for r in _burst(client, key, 4))
