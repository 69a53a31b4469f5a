"""Helpers for the Image Creator tests (imported by name: pytest puts this folder on ``sys.path``)."""

from __future__ import annotations

import io
import itertools
import re
import time
import uuid
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from limner.server.settings import Settings

PASSWORD = "correct horse battery staple"
STEPS = 30  # the tiny model's sampling steps: enough for progress to show, about a second per job
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
_n = itertools.count()


def new_email() -> str:
    return f"person-{next(_n)}-{uuid.uuid4().hex[:8]}@example.com"


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# -- in-process (TestClient) -----------------------------------------------------------------------


@dataclass
class Account:
    client: TestClient  # holds this account's cookies
    email: str

    @property
    def csrf(self) -> str:
        return self.client.cookies["limner_csrf"]

    def post(self, url: str, **data: str):
        """A form post carrying this browser's CSRF token, as the pages' forms do."""
        return self.client.post(url, data={"csrf_token": self.csrf, **data})

    def create(self, prompt: str = "a red apple") -> str:
        """Press Create; → the job id."""
        r = self.post("/create", prompt=prompt)
        assert r.status_code == 303, r.text
        return r.headers["location"].removeprefix("/jobs/")


def csrf_from_page(client: TestClient, path: str) -> str:
    """Load a page (which sets the CSRF cookie on first visit) and read the token off its form."""
    r = client.get(path)
    assert r.status_code == 200, r.text
    token = CSRF_FIELD.search(r.text)
    assert token, "the page has no CSRF field"
    return token.group(1)


def sign_up(client: TestClient, email: str | None = None) -> Account:
    """Sign up, then sign in (sign-up never signs in: it answers alike whether or not the email
    had an account)."""
    email = email or new_email()
    token = csrf_from_page(client, "/signup")
    r = client.post("/signup", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/signin?created=1", r.text
    r = client.post("/signin", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 303, r.text
    return Account(client, email)


def wait_job(app: FastAPI, job_id: str, timeout: float = 60) -> dict:
    """Block until the job ends; → its final state (status, creations, error), from its row."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = app.state.jobs.outcome(job_id)
        if out["status"] in ("done", "failed", "cancelled", "blocked"):
            return out
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} did not finish in {timeout} s")


# -- in a browser (Playwright page) ----------------------------------------------------------------


@dataclass
class LiveServer:
    """The real server, running in a background thread of the test process."""

    url: str
    app: FastAPI

    @property
    def settings(self) -> Settings:
        return self.app.state.settings

    def backend(self):  # the tiny model's SlowSteps backend (see conftest)
        return self.app.state.engine.backend("tiny")


def browser_sign_up(page, email: str | None = None) -> str:
    email = email or new_email()
    page.goto("/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/signin?created=1")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
    return email


def browser_create(page, prompt: str) -> str:
    """Type a prompt and press Create; → the job page's URL."""
    page.goto("/")
    page.get_by_label("Prompt").fill(prompt)
    page.get_by_role("button", name="Create", exact=True).click()
    page.wait_for_url("**/jobs/*")
    return page.url


def wait_results(page, n: int = 4) -> list[str]:
    """Wait until the job page shows its finished images; → their /images/… links."""
    page.locator("#results a img").nth(n - 1).wait_for(timeout=60_000)
    return [a.get_attribute("href") for a in page.locator("#results a").all()]
