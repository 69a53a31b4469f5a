"""Accounts: Argon2id hashes, cookie flags, sessions that end at sign-out (``limner.server.web.auth``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from web_helpers import PASSWORD, Account, csrf_from_page, new_email

from limner.server.app import create_app
from limner.server.settings import Settings
from limner.server.web.auth import HASHER
from limner.store.db import User, WebSession


def set_cookies(response) -> dict[str, str]:
    """Set-Cookie headers by cookie name, as sent."""
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


def flags(header: str) -> set[str]:
    return {part.strip().lower() for part in header.split(";")[1:]}


def test_password_is_stored_as_an_argon2id_hash(app: FastAPI, account: Callable[[], Account]) -> None:
    a = account()
    with app.state.db.session() as s:
        stored = s.scalar(select(User.password_hash).where(User.email == a.email))
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PASSWORD not in stored
    assert HASHER.verify(stored, PASSWORD)


def test_session_and_csrf_cookies_are_httponly_secure_samesite(app: FastAPI) -> None:
    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    r = client.get("/signup")
    csrf = set_cookies(r)["limner_csrf"]
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags(csrf)
    token = client.cookies["limner_csrf"]
    email = new_email()
    r = client.post("/signup", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert "limner_session" not in set_cookies(r)  # sign-up never signs in
    r = client.post("/signin", data={"email": email, "password": PASSWORD, "csrf_token": token})
    session = set_cookies(r)["limner_session"]
    assert {"httponly", "secure", "samesite=lax", "path=/"} <= flags(session)
    value = session.split(";")[0].split("=", 1)[1]
    assert len(value) >= 40  # 32 random bytes, URL-safe base64


def test_cookies_without_secure_when_configured(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(tmp_path, cookie_secure=False))
    with TestClient(app, follow_redirects=False) as client:
        token = csrf_from_page(client, "/signup")
        email = new_email()
        client.post("/signup", data={"email": email, "password": PASSWORD, "csrf_token": token})
        r = client.post("/signin", data={"email": email, "password": PASSWORD, "csrf_token": token})
    session = flags(set_cookies(r)["limner_session"])
    assert "secure" not in session
    assert {"httponly", "samesite=lax"} <= session


def test_sign_in_checks_the_password(app: FastAPI, account: Callable[[], Account]) -> None:
    a = account()
    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    token = csrf_from_page(client, "/signin")
    wrong = client.post("/signin", data={"email": a.email, "password": "not the password", "csrf_token": token})
    assert wrong.status_code == 401
    assert "Wrong email or password." in wrong.text
    assert "limner_session" not in set_cookies(wrong)
    nobody = client.post("/signin", data={"email": new_email(), "password": PASSWORD, "csrf_token": token})
    assert nobody.status_code == 401
    assert "Wrong email or password." in nobody.text  # the same answer: no account enumeration
    right = client.post("/signin", data={"email": a.email.upper(), "password": PASSWORD, "csrf_token": token})
    assert right.status_code == 303
    assert client.get("/").status_code == 200


def test_sign_up_refuses_bad_input(app: FastAPI) -> None:
    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    token = csrf_from_page(client, "/signup")
    for email, password, message in [
        ("not-an-email", PASSWORD, "enter a valid email address"),
        (new_email(), "short", "at least 10 characters"),
        (new_email(), " " * 12, "at least 10 characters"),
        (new_email(), "abababababab", "too easy to guess"),
        (new_email(), "password123", "too easy to guess"),
    ]:
        r = client.post("/signup", data={"email": email, "password": password, "csrf_token": token})
        assert r.status_code == 400
        assert message in r.text
        assert "limner_session" not in set_cookies(r)


def test_session_cookie_is_invalid_after_sign_out(app: FastAPI, account: Callable[[], Account]) -> None:
    a = account()
    old = a.client.cookies["limner_session"]
    assert a.client.get("/").status_code == 200
    r = a.post("/signout")
    assert r.status_code == 303 and r.headers["location"] == "/signin"
    cleared = set_cookies(r)["limner_session"]
    assert "max-age=0" in flags(cleared)
    assert {"httponly", "secure", "samesite=lax"} <= flags(cleared)
    # the old cookie, replayed, opens nothing: the session is gone from the server
    replay = TestClient(app, base_url="https://testserver", follow_redirects=False, cookies={"limner_session": old})
    r = replay.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/signin"
    replay.cookies.set("limner_csrf", "t")
    assert replay.post("/create", data={"prompt": "an apple", "csrf_token": "t"}).status_code == 401
    with app.state.db.session() as s:
        user_id = s.scalar(select(User.id).where(User.email == a.email))
        assert s.scalar(select(func.count(WebSession.id)).where(WebSession.user_id == user_id)) == 0


def test_pages_need_an_account(app: FastAPI) -> None:
    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    for path in ["/", "/history", "/images/img-x", "/jobs/job-x"]:
        r = client.get(path)
        assert (r.status_code, r.headers.get("location")) == (303, "/signin"), path
