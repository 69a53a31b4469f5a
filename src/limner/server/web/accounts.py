"""Image Creator accounts: sign up, sign in, sign out — with attempt limits per account and per
address (``store.throttle``) and the password rules and hashing of ``web.auth``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from limner.server.deps import client_address
from limner.server.settings import Settings
from limner.server.web.auth import authenticate, check_csrf, create_user, end_session, hashing, start_session
from limner.server.web.pages import redirect, render_page
from limner.store import throttle

router = APIRouter(tags=["image creator"], include_in_schema=False)


def signin_account(settings: Settings) -> throttle.Limit:
    """Wrong passwords for one account per 15 minutes."""
    return throttle.Limit("signin-account", settings.signin_failures_per_account, 900)


def signin_address(settings: Settings) -> throttle.Limit:
    """Wrong passwords from one client address per 15 minutes."""
    return throttle.Limit("signin-address", settings.signin_failures_per_address, 900)


def signup_address(settings: Settings) -> throttle.Limit:
    """Sign-ups from one client address per hour."""
    return throttle.Limit("signup-address", settings.signups_per_address, 3600)


@router.get("/signup", response_class=HTMLResponse)
def signup_page(request: Request) -> HTMLResponse:
    return render_page(request, "signup.html")


def too_many(request: Request, page: str, seconds: int, **ctx: object) -> HTMLResponse:
    response = render_page(
        request, page, 429, error=f"Too many attempts; try again in {throttle.minutes(seconds)}.", **ctx
    )
    response.headers["Retry-After"] = str(seconds)
    return response


@router.post("/signup")
def signup(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Whether or not the email has an account already, the answer is the same — "sign in now" —
    so sign-up tells nobody who has an account."""
    check_csrf(request, csrf_token)
    db = request.app.state.db
    with db.session() as s:
        wait = throttle.retry_after(s, signup_address(request.app.state.settings), client_address(request))
    if wait is not None:
        return too_many(request, "signup.html", wait, email_value=email)
    try:
        with hashing(), db.session() as s:
            create_user(s, email, password)
            throttle.count(s, signup_address(request.app.state.settings), client_address(request))
    except ValueError as e:
        return render_page(request, "signup.html", 400, error=str(e), email_value=email)
    return redirect("/signin?created=1")


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request, created: bool = False, reset: bool = False) -> HTMLResponse:
    notice = "Your account is ready: sign in with your email and password." if created else None
    if reset:
        notice = "Your password is changed, and every other sign-in ended: sign in with the new one."
    return render_page(request, "signin.html", notice=notice)


@router.post("/signin")
def signin(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Wrong passwords are counted per account and per address; past either limit the form is
    refused — the right password too — until the window ends, and no hash is computed."""
    check_csrf(request, csrf_token)
    db = request.app.state.db
    settings = request.app.state.settings
    account, address = signin_account(settings), signin_address(settings)
    subjects = ((account, email), (address, client_address(request)))
    with db.session() as s:
        waits = [w for limit, who in subjects if (w := throttle.retry_after(s, limit, who)) is not None]
    if waits:
        return too_many(request, "signin.html", max(waits), email_value=email)
    with hashing(), db.session() as s:
        user = authenticate(s, email, password)
        if user is None:
            for limit, who in subjects:
                throttle.count(s, limit, who)
            return render_page(request, "signin.html", 401, error="Wrong email or password.", email_value=email)
        throttle.clear(s, account, email)
        response = redirect("/")
        start_session(s, user, response, request.app.state.settings.cookie_secure)
    return response


@router.post("/signout")
def signout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf_token)
    response = redirect("/signin")
    with request.app.state.db.session() as s:
        end_session(s, request, response, request.app.state.settings.cookie_secure)
    return response
