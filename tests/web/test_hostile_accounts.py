"""Hostile input against accounts (hardening item 7): password guessing, a flood of sign-ins
(each Argon2 hash holds 64 MiB), weak passwords, and asking sign-up who has an account."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from web_helpers import PASSWORD, csrf_from_page, new_email, sign_up

from limner.server.app import create_app
from limner.server.web import auth
from limner.store import days

pytestmark = pytest.mark.hostile


class Watched:
    """The real hasher, counting verifications and the most running at once."""

    def __init__(self, real):
        self.real, self.calls, self.running, self.peak = real, 0, 0, 0

    def verify(self, *a):
        self.calls += 1
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            return self.real.verify(*a)
        finally:
            self.running -= 1

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.fixture
def strict(tmp_path: Path, make_settings, monkeypatch) -> Iterator[TestClient]:
    """An app with the production limits on attempts, at an instant in the middle of every
    attempt window (so no window ends during a test)."""
    monkeypatch.setattr(days, "now", lambda: 1_800_000_000.0 + 450)
    settings = make_settings(tmp_path, signups_per_address=5)
    with TestClient(create_app(settings), base_url="https://testserver", follow_redirects=False) as tc:
        yield tc


def _signin(tc: TestClient, email: str, password: str):
    token = csrf_from_page(tc, "/signin")
    return tc.post("/signin", data={"email": email, "password": password, "csrf_token": token})


def test_thirty_wrong_passwords_then_the_right_one_is_refused(strict, monkeypatch):
    email = sign_up(strict).email
    strict.cookies.clear()
    hasher = Watched(auth.HASHER)
    monkeypatch.setattr(auth, "HASHER", hasher)
    codes = [_signin(strict, email, f"guess number {i}").status_code for i in range(30)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    assert hasher.calls == 5  # refused guesses cost no hash
    right = _signin(strict, email, PASSWORD)
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0
    assert "limner_session" not in right.headers.get("set-cookie", "")


def test_many_accounts_guessed_from_one_address_are_refused(strict):
    emails = [
        sign_up(TestClient(strict.app, base_url="https://testserver", follow_redirects=False)).email for _ in range(5)
    ]
    codes = [_signin(strict, emails[i % 5], "a wrong password").status_code for i in range(24)]
    assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}


def test_parallel_sign_ins_hash_at_most_two_at_a_time(strict, monkeypatch):
    email = sign_up(strict).email
    hasher = Watched(auth.HASHER)
    monkeypatch.setattr(auth, "HASHER", hasher)
    clients = [TestClient(strict.app, base_url="https://testserver", follow_redirects=False) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda tc: _signin(tc, email, PASSWORD).status_code, clients))
    assert codes.count(303) >= 1 and set(codes) <= {303, 503}
    assert hasher.peak <= 2


def test_sign_up_tells_nobody_who_has_an_account(strict):
    taken = sign_up(strict).email
    answers = []
    for email in (taken, new_email()):
        tc = TestClient(strict.app, base_url="https://testserver", follow_redirects=False)
        token = csrf_from_page(tc, "/signup")
        r = tc.post("/signup", data={"email": email, "password": "another long phrase", "csrf_token": token})
        answers.append((r.status_code, r.headers.get("location"), "limner_session" in r.headers.get("set-cookie", "")))
    assert answers[0] == answers[1] == (303, "/signin?created=1", False)
    assert _signin(strict, taken, "another long phrase").status_code == 401  # the account was not changed


def test_sign_ups_from_one_address_are_limited(strict):
    codes = []
    for _ in range(7):
        token = csrf_from_page(strict, "/signup")
        codes.append(
            strict.post("/signup", data={"email": new_email(), "password": PASSWORD, "csrf_token": token}).status_code
        )
    assert codes[:4] == [303] * 4 and codes[-1] == 429  # the fixture's own sign-ups count too


@pytest.mark.parametrize("password", [" " * 10, " " * 40, "aaaaaaaaaaaa", "1212121212", "qwertyuiop"])
def test_a_real_password_is_required(strict, password):
    token = csrf_from_page(strict, "/signup")
    r = strict.post("/signup", data={"email": new_email(), "password": password, "csrf_token": token})
    assert r.status_code == 400
