"""Helpers for the arena tests (imported by name: pytest puts this folder on ``sys.path``)."""

from __future__ import annotations

import itertools
import re
import time

from fastapi.testclient import TestClient

MODELS = ("painter-alpha", "painter-beta")  # names that cannot appear by chance in a page or a PNG
POOL = [
    'a round badge that says "OPEN"',  # text rendering
    "a thumbs up, dark skin tone",  # people and skin tones
    "a beach at sunset",  # scenes
    "a red apple",  # objects
]


class Clock:
    """A clock that moves ``step`` seconds each time it is read."""

    def __init__(self, start: float | None = None, step: float = 3.0):
        # from the real time: the server's housekeeping, on the real clock, sees battles as new
        self.now, self.step = time.time() if start is None else start, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


PASSWORD = "correct horse battery staple"
_accounts = itertools.count()


def sign_up(tc: TestClient) -> str:
    """Make an account through the sign-up form and keep its session cookie in ``tc``; → the email."""
    email = f"voter-{next(_accounts)}@example.com"
    page = tc.get("/signup")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, "the sign-up page has no CSRF field"
    r = tc.post(
        "/signup", data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    sign_in(tc, email)  # sign-up never signs in
    return email


def sign_in(tc: TestClient, email: str) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', tc.get("/signin").text)
    assert token, "the sign-in page has no CSRF field"
    r = tc.post(
        "/signin", data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)}, follow_redirects=False
    )
    assert r.status_code == 303, r.text


def new_battle(tc: TestClient, prompt: str | None = None) -> dict:
    r = tc.post("/arena/api/battles", json={"prompt": prompt} if prompt else {})
    assert r.status_code == 200, r.text
    return r.json()


def vote(tc: TestClient, battle: dict, outcome: str, token: str | None = None):
    body = {"battle_id": battle["id"], "token": battle["token"] if token is None else token, "outcome": outcome}
    return tc.post("/arena/api/votes", json=body)


def battle_and_vote(tc: TestClient, outcome: str) -> dict:
    """One curated battle, voted on; returns the vote's answer (the revealed models)."""
    r = vote(tc, new_battle(tc), outcome)
    assert r.status_code == 200, r.text
    return r.json()


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


def png_chunks(data: bytes) -> list[str]:
    """The chunk types of a PNG file, in order."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    types, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        types.append(data[pos + 4 : pos + 8].decode("ascii"))
        pos += 12 + length
    return types
