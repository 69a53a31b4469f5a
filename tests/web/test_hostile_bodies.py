"""Hostile input: request bodies past their limit, sent chunked so that no Content-Length warns
the server (hardening item 3). The server must stop reading at the route's limit and answer 413
— before parsing the form, before any password hash, before authentication."""

from __future__ import annotations

import select
import socket
from urllib.parse import urlparse

import pytest

from limner.server.body_limit import body_limit
from limner.store.keys import create_key

pytestmark = pytest.mark.hostile
CHUNK = 64 * 1024


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


def _send_chunked(url: str, path: str, content_type: str, budget: int, key: str = "") -> tuple[int, int]:
    """POST ``path`` with a well-formed chunked body of up to ``budget`` bytes (for multipart, one
    endless file part); stop sending as soon as the server answers. → (HTTP status, bytes sent
    before the answer came)."""
    u = urlparse(url)
    sock = socket.create_connection((u.hostname, u.port), timeout=30)
    head = f"POST {path} HTTP/1.1\r\nHost: {u.hostname}\r\nTransfer-Encoding: chunked\r\n"
    head += f"Content-Type: {content_type}\r\n" + (f"Authorization: Bearer {key}\r\n" if key else "") + "\r\n"
    sock.sendall(head.encode())
    if content_type.startswith("multipart/"):
        sock.sendall(_chunk(b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'))
    elif content_type == "application/json":
        sock.sendall(_chunk(b'{"prompt": "'))
    else:
        sock.sendall(_chunk(b"email=x&password="))
    sent = 0
    payload = _chunk(b"a" * CHUNK)
    try:
        while sent < budget:
            if select.select([sock], [], [], 0)[0]:
                break  # the server has answered
            sock.sendall(payload)
            sent += CHUNK
        else:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed
    sock.settimeout(30)
    answer = sock.recv(4096).decode("latin-1")
    sock.close()
    return int(answer.split(" ", 2)[1]), sent


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/signin", "application/x-www-form-urlencoded"),
        ("/signup", "multipart/form-data; boundary=xyz"),
        ("/v1/images/generations", "application/json"),
        ("/v1/images/edits", "multipart/form-data; boundary=xyz"),
    ],
)
def test_a_chunked_body_past_the_limit_is_refused_while_it_streams(live_server, path, content_type):
    with live_server.app.state.db.session() as s:
        key, _ = create_key(s, "hostile")
    limit = body_limit(live_server.settings, path)
    budget = limit + 48 * 2**20  # the old server read all of it (spooled to disk) before answering
    status, sent = _send_chunked(live_server.url, path, content_type, budget, key)
    assert status == 413
    assert sent < limit + 16 * 2**20  # what the kernel's socket buffers hold, not the whole body


def test_a_declared_length_past_the_limit_is_refused_before_reading(live_server):
    u = urlparse(live_server.url)
    with socket.create_connection((u.hostname, u.port), timeout=30) as sock:
        sock.sendall(
            b"POST /signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 400000000\r\nConnection: close\r\n\r\nemail=a"
        )
        answer = b""
        while chunk := sock.recv(4096):  # the server closes after its answer
            answer += chunk
        answer = answer.decode("latin-1")
    assert answer.startswith("HTTP/1.1 413")
    assert "request_too_large" in answer


def test_an_over_long_prompt_in_the_form_gets_a_page_not_json(account):
    a = account()
    r = a.client.post(
        "/create", data={"csrf_token": a.csrf, "prompt": "x" * 5000}, headers={"Accept": "text/html,*/*;q=0.8"}
    )
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    assert "too long" in r.text and '"error"' not in r.text
