"""Every Image Creator form is refused (403) without the browser's CSRF token or with a wrong one,
and accepted with it (``check_csrf``: double-submit cookie + hidden field or X-CSRF-Token)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select
from web_helpers import PASSWORD, Account, new_email, png, wait_job

from limner.store.db import Job, User

MISSING, WRONG = None, "forged-token"


def mask_file() -> dict:
    mask = Image.new("L", (128, 128))
    mask.paste(255, (0, 0, 64, 64))
    return {"mask": ("mask.png", png(mask), "image/png")}


@pytest.fixture
def made(app: FastAPI, account: Callable[[], Account]) -> tuple[Account, str, str]:
    """An account with one finished job; → (account, job id, one of its image ids)."""
    a = account()
    job = a.create()
    creations = wait_job(app, job)["creations"]
    assert len(creations) == 4
    return a, job, creations[0]


def post(a: Account, url: str, token: str | None, files: dict | None = None, **data: str):
    if token is not None:
        data["csrf_token"] = token
    return a.client.post(url, data=data, files=files)


@pytest.mark.parametrize("token", [MISSING, WRONG])
def test_account_forms_need_the_token(app: FastAPI, token: str | None) -> None:
    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    client.get("/signup")  # the browser has its CSRF cookie; the forged form doesn't echo it
    a = Account(client, new_email())
    for url in ["/signup", "/signin"]:
        r = post(a, url, token, email=a.email, password=PASSWORD)
        assert r.status_code == 403, url
        assert r.json()["error"]["code"] == "csrf_failed"
        assert "limner_session" not in r.cookies


@pytest.mark.parametrize("token", [MISSING, WRONG])
def test_signed_in_forms_need_the_token(app: FastAPI, made: tuple[Account, str, str], token: str | None) -> None:
    a, job, image = made
    forms = [
        ("/create", {"prompt": "a blue pear"}, None),
        (f"/images/{image}/variations", {}, None),
        (f"/images/{image}/edit", {"prompt": "a green pear"}, mask_file()),
        (f"/jobs/{job}/cancel", {}, None),
        (f"/images/{image}/delete", {}, None),
        ("/signout", {}, None),
    ]
    for url, data, files in forms:
        r = post(a, url, token, files, **data)
        assert r.status_code == 403, url
        assert r.json()["error"]["code"] == "csrf_failed", url
    # nothing happened: no new job, the image is still there, still signed in
    assert a.client.get(f"/images/{image}").status_code == 200
    assert a.client.get("/").status_code == 200
    with app.state.db.session() as s:
        user_id = s.scalar(select(User.id).where(User.email == a.email))
        assert s.scalar(select(func.count(Job.id)).where(Job.user_id == user_id)) == 1


def test_a_cookie_without_a_token_or_a_token_without_a_cookie_fails(made: tuple[Account, str, str]) -> None:
    a, _, image = made
    token = a.csrf
    a.client.cookies.delete("limner_csrf")
    assert post(a, f"/images/{image}/delete", token).status_code == 403  # e.g. a cross-site post
    a.client.cookies.set("limner_csrf", token)
    assert a.client.get(f"/images/{image}").status_code == 200


def test_the_right_token_is_accepted_in_the_form_or_the_header(app: FastAPI, made: tuple[Account, str, str]) -> None:
    a, _, image = made
    r = a.client.post(f"/images/{image}/variations", headers={"X-CSRF-Token": a.csrf})
    assert r.status_code == 303 and r.headers["location"].startswith("/jobs/")
    wait_job(app, r.headers["location"].removeprefix("/jobs/"))
    r = post(a, f"/images/{image}/delete", a.csrf)
    assert (r.status_code, r.headers["location"]) == (303, "/history")
    assert a.client.get(f"/images/{image}").status_code == 404
