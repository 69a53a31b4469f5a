"""``/v1/files/{id}/content``: signed, expiring links, and the owner's key."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from api_helpers import STEPS, error_of

from limner.store import files as files_module


@pytest.fixture
def link(oai) -> str:
    r = oai.images.generate(prompt="a red apple", response_format="url", extra_body={"num_inference_steps": STEPS})
    return r.data[0].url


def _parts(url: str) -> tuple[str, int, str]:
    u = urlsplit(url)
    q = parse_qs(u.query)
    return u.path, int(q["expires"][0]), q["signature"][0]


def test_signed_link_works_without_a_key(client, link):
    r = client.get(link)
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
    assert r.headers["cache-control"].startswith("private")


def test_link_expires(client, settings, link, monkeypatch):
    _, expires, _ = _parts(link)
    assert expires - time.time() == pytest.approx(settings.url_expiry_minutes * 60, abs=5)
    later = expires + 1
    monkeypatch.setattr(files_module.time, "time", lambda: later)
    r = client.get(link)
    assert r.status_code == 403
    err = error_of(r)
    assert err["code"] == "invalid_signature" and err["type"] == "invalid_request_error"


def test_crafted_expired_link(client, link):
    path, _, _ = _parts(link)
    file_id = path.split("/")[3]
    store = client.app.state.files
    old = store.signed_path(file_id, minutes=60, now=time.time() - 7200)  # expired an hour ago
    assert client.get(old).status_code == 403


def test_extending_expiry_breaks_the_signature(client, link):
    path, expires, signature = _parts(link)
    r = client.get(path, params={"expires": expires + 3600, "signature": signature})
    assert r.status_code == 403


def test_wrong_signature(client, link):
    path, expires, signature = _parts(link)
    forged = ("0" if signature[0] != "0" else "1") + signature[1:]
    r = client.get(path, params={"expires": expires, "signature": forged})
    assert r.status_code == 403 and error_of(r)["code"] == "invalid_signature"


def test_signature_of_another_file(client, oai, link):
    other = (
        oai.images.generate(prompt="a pear", response_format="url", extra_body={"num_inference_steps": STEPS})
        .data[0]
        .url
    )
    path, _, _ = _parts(link)
    _, expires, signature = _parts(other)
    assert client.get(path, params={"expires": expires, "signature": signature}).status_code == 403


def test_owner_key_without_signature(client, auth, link):
    path, _, _ = _parts(link)
    r = client.get(path, headers=auth)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"


def test_other_key_without_signature_is_not_found(client, make_key, link):
    path, _, _ = _parts(link)
    r = client.get(path, headers={"Authorization": f"Bearer {make_key('stranger')}"})
    assert r.status_code == 404
    err = error_of(r)
    assert err["code"] == "file_not_found" and err["param"] == "file_id"


def test_no_key_no_signature(client, link):
    path, _, _ = _parts(link)
    r = client.get(path)
    assert r.status_code == 401 and error_of(r)["code"] == "missing_api_key"


def test_unknown_file(client, auth):
    r = client.get("/v1/files/file-0123456789abcdef0123456789abcdef/content", headers=auth)
    assert r.status_code == 404 and error_of(r)["code"] == "file_not_found"
    r = client.get("/v1/files/nope/content", params={"expires": 1, "signature": "x"})
    assert r.status_code == 404


def test_jpeg_and_webp_links(client, oai):
    for fmt, mime in (("jpeg", "image/jpeg"), ("webp", "image/webp")):
        url = (
            oai.images.generate(
                prompt="a red apple",
                response_format="url",
                output_format=fmt,
                extra_body={"num_inference_steps": STEPS},
            )
            .data[0]
            .url
        )
        r = client.get(url)
        assert r.status_code == 200 and r.headers["content-type"] == mime


def test_signing_is_keyed_by_the_secret(tmp_path):
    a = files_module.FileStore(tmp_path, "secret-a")
    b = files_module.FileStore(tmp_path, "secret-b")
    assert a.signature("file-1", 100) != b.signature("file-1", 100)
    assert a.check("file-1", 2**40, a.signature("file-1", 2**40))
    assert not b.check("file-1", 2**40, a.signature("file-1", 2**40))
    assert not a.check("file-1", 100, a.signature("file-1", 100))  # 1970: long expired
