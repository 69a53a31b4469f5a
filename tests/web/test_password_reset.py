"""Password reset: a link the operator prints (or SMTP mails) works once, for its hours, signs the
account out everywhere, and says nothing about who has an account."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from web_helpers import PASSWORD, Account, csrf_from_page, new_email, sign_up

from limner import cli
from limner.server.app import create_app
from limner.server.settings import Settings
from limner.server.web import reset

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings]
) -> Iterator[tuple[FastAPI, Path]]:
    """An app whose data folder the CLI can reach (the secret is kept there)."""
    data = tmp_path_factory.mktemp("reset-data")
    app = create_app(make_settings(data, secret=None))
    with TestClient(app, base_url="https://testserver"):
        yield app, data


def link_for(data: Path, email: str, *extra: str) -> str:
    args = ["users", "reset-link", email, "--data-dir", str(data), "--url", "https://images.example.org", *extra]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def new_browser(app: FastAPI) -> TestClient:
    return TestClient(app, base_url="https://testserver", follow_redirects=False)


def choose(client: TestClient, token: str, password: str = NEW_PASSWORD):
    csrf = csrf_from_page(client, "/signin")
    return client.post("/reset", data={"token": token, "password": password, "csrf_token": csrf})


def signs_in(app: FastAPI, email: str, password: str) -> bool:
    client = new_browser(app)
    csrf = csrf_from_page(client, "/signin")
    return client.post("/signin", data={"email": email, "password": password, "csrf_token": csrf}).status_code == 303


def test_the_operators_link_sets_a_new_password_once_and_signs_out_everywhere(served) -> None:
    app, data = served
    account = sign_up(new_browser(app))
    link = link_for(data, account.email.upper())  # the email as typed, any case
    assert link.startswith("https://images.example.org/reset?token=")
    token = link.split("token=")[1]

    browser = new_browser(app)
    page = browser.get(f"/reset?token={token}")
    assert page.status_code == 200 and "Choose a new password" in page.text
    weak = choose(browser, token, "short")
    assert weak.status_code == 400 and "at least 10 characters" in weak.text
    r = choose(browser, token)
    assert r.status_code == 303 and r.headers["location"] == "/signin?reset=1"

    assert account.client.get("/").status_code in (302, 303, 307)  # the old session is gone
    assert not signs_in(app, account.email, PASSWORD)
    assert signs_in(app, account.email, NEW_PASSWORD)
    again = choose(new_browser(app), token, "yet another passphrase")  # once only
    assert again.status_code == 400 and "expired or was used" in again.text
    assert signs_in(app, account.email, NEW_PASSWORD)


def test_a_tampered_or_expired_link_is_refused(served) -> None:
    app, data = served
    account = sign_up(new_browser(app))
    token = link_for(data, account.email).split("token=")[1]
    user_id, expires, mac = token.split(".")
    for bad in (f"{int(user_id) + 1}.{expires}.{mac}", f"{user_id}.{int(expires) + 3600}.{mac}", "x" * 300, ""):
        assert new_browser(app).get("/reset", params={"token": bad}).status_code == 400
        assert choose(new_browser(app), bad).status_code in (400, 422)
    short = link_for(data, account.email, "--hours", "0.0003").split("token=")[1]  # about a second
    time.sleep(1.5)
    assert "expired or was used" in new_browser(app).get(f"/reset?token={short}").text
    assert choose(new_browser(app), short).status_code == 400
    assert signs_in(app, account.email, PASSWORD)


def test_the_cli_says_what_is_wrong(served) -> None:
    _, data = served
    base = ["users", "reset-link", "--data-dir", str(data)]
    where = CliRunner().invoke(cli.app, [*base, "a@example.com"], env={"LIMNER_PUBLIC_URL": ""})
    assert where.exit_code == 1 and "say where users reach the server" in where.output
    url = ["--url", "https://images.example.org"]
    no_one = CliRunner().invoke(cli.app, [*base, *url, "nobody@example.com"])
    assert no_one.exit_code == 1 and "no account has the email" in no_one.output
    too_long = CliRunner().invoke(cli.app, [*base, *url, "a@example.com", "--hours", "99"])
    assert too_long.exit_code == 1 and "--hours" in too_long.output


def test_without_mail_the_page_points_to_the_operator(app: FastAPI) -> None:
    client = new_browser(app)
    assert 'href="/forgot"' in client.get("/signin").text
    page = client.get("/forgot").text
    assert "limner users reset-link" in page and 'action="/forgot"' not in page


class FakeSMTP:
    sent: ClassVar[list] = []

    def __init__(self, host: str, port: int, timeout: float):
        self.host, self.port = host, port

    def __enter__(self) -> FakeSMTP:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def starttls(self) -> None:
        pass

    def login(self, user: str, password: str) -> None:
        pass

    def send_message(self, message) -> None:
        FakeSMTP.sent.append(message)


def test_with_smtp_the_link_is_mailed_and_the_answer_is_the_same_for_everyone(
    tmp_path: Path, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reset.smtplib, "SMTP", FakeSMTP)
    FakeSMTP.sent = []
    app = create_app(make_settings(tmp_path, smtp_host="mail.example.org", public_url="https://img.example.org"))
    with TestClient(app, base_url="https://testserver"):
        account: Account = sign_up(new_browser(app))
        answers = []
        for email in (account.email, new_email()):
            client = new_browser(app)
            csrf = csrf_from_page(client, "/forgot")
            r = client.post("/forgot", data={"email": email, "csrf_token": csrf})
            answers.append((r.status_code, re.sub(r'value="[^"]+"', "", r.text)))
        assert answers[0] == answers[1] and answers[0][0] == 200 and "is on its way" in answers[0][1]
        assert len(FakeSMTP.sent) == 1 and FakeSMTP.sent[0]["To"] == account.email
        link = re.search(r"https://img\.example\.org/reset\?token=\S+", FakeSMTP.sent[0].get_content()).group(0)
        r = choose(new_browser(app), link.split("token=")[1])
        assert r.status_code == 303
        assert signs_in(app, account.email, NEW_PASSWORD)
