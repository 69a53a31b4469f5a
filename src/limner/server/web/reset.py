"""Password reset. A reset link carries the account, an expiry and an HMAC over both and the
account's current password hash, keyed by the server's secret: nothing is stored, the link dies
when it expires, and it works once — setting a password changes the hash it was signed over.
Setting one also signs the account out everywhere.

Two ways to get a link: the operator prints one (``limner users reset-link EMAIL``) and hands
it over; or, where SMTP is configured (``LIMNER_SMTP_HOST`` …), "Forgot your password?" mails
it. The form answers the same whether or not the email has an account."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import smtplib
import time
from email.message import EmailMessage
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from limner.server.api.images import public_base
from limner.server.settings import Settings
from limner.server.web.accounts import too_many
from limner.server.web.auth import HASHER, check_csrf, check_password, hashing
from limner.server.web.pages import redirect, render_page
from limner.store import throttle
from limner.store.db import User, WebSession

router = APIRouter(tags=["image creator"], include_in_schema=False)
log = logging.getLogger("limner.reset")
LINK_HOURS = 1.0


def _mac(secret: str, user: User, expires: int) -> str:
    message = f"reset|{user.id}|{expires}|{user.password_hash}".encode()
    return base64.urlsafe_b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()[:24]).decode()


def reset_token(secret: str, user: User, hours: float = LINK_HOURS) -> str:
    expires = int(time.time() + hours * 3600)
    return f"{user.id}.{expires}.{_mac(secret, user, expires)}"


def reset_link(settings: Settings, user: User, base_url: str, hours: float = LINK_HOURS) -> str:
    return f"{base_url.rstrip('/')}/reset?token={reset_token(settings.resolved_secret(), user, hours)}"


def user_for_token(session: Session, secret: str, token: str) -> User | None:
    """The account a valid, unexpired, unused link belongs to; None for anything else."""
    parts = token.split(".")
    if len(token) > 200 or len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    expires = int(parts[1])
    if expires < time.time():
        return None
    user = session.get(User, int(parts[0]))
    if user is None or not hmac.compare_digest(_mac(secret, user, expires), parts[2]):
        return None
    return user


def set_password(session: Session, user: User, password: str) -> None:
    """A new password (the sign-up rules), and every session of the account ended."""
    check_password(password)
    user.password_hash = HASHER.hash(password)
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))


# -- mail -------------------------------------------------------------------------------------------


def send_link(settings: Settings, to: str, link: str) -> None:
    message = EmailMessage()
    message["From"] = settings.smtp_from or f"limner@{settings.smtp_host}"
    message["To"] = to
    message["Subject"] = "Reset your Limner password"
    message.set_content(
        f"Someone asked to reset the password of the Limner account {to}.\n\n"
        f"To choose a new password, open this link within {LINK_HOURS:g} hour:\n\n{link}\n\n"
        "If it was not you, ignore this mail: your password stays as it is.\n"
    )
    with smtplib.SMTP(settings.smtp_host or "", settings.smtp_port, timeout=20) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password or "")
        smtp.send_message(message)


def forgot_address(settings: Settings) -> throttle.Limit:
    """Reset mails asked for from one client address per hour."""
    return throttle.Limit("reset-address", settings.signups_per_address, 3600)


# -- pages ------------------------------------------------------------------------------------------


@router.get("/forgot", response_class=HTMLResponse)
def forgot_page(request: Request) -> HTMLResponse:
    return render_page(request, "forgot.html", mail=bool(request.app.state.settings.smtp_host))


@router.post("/forgot")
async def forgot(
    request: Request, email: Annotated[str, Form(max_length=320)], csrf_token: Annotated[str, Form()] = ""
) -> Response:
    """The same answer whether or not the email has an account, and whether the mail went."""
    check_csrf(request, csrf_token)
    settings = request.app.state.settings
    if not settings.smtp_host:
        return render_page(request, "forgot.html", mail=False)
    address = request.client.host if request.client else "unknown"
    with request.app.state.db.session() as s:
        wait = throttle.retry_after(s, forgot_address(settings), address)
        if wait is None:
            throttle.count(s, forgot_address(settings), address)
            user = s.scalar(select(User).where(User.email == email.strip().lower()))
            link = None if user is None else reset_link(settings, user, public_base(request))
    if wait is not None:
        return too_many(request, "forgot.html", wait, mail=True)
    if link is not None:
        try:
            await run_in_threadpool(send_link, settings, email.strip().lower(), link)
        except (OSError, smtplib.SMTPException) as e:  # said in the log, never to the asker
            log.warning("could not send a reset mail: %s", type(e).__name__)
    return render_page(request, "forgot.html", mail=True, sent=True)


@router.get("/reset", response_class=HTMLResponse)
def reset_page(request: Request, token: str = "") -> HTMLResponse:
    with request.app.state.db.session() as s:
        valid = user_for_token(s, request.app.state.settings.resolved_secret(), token) is not None
    return render_page(request, "reset.html", 200 if valid else 400, token=token, valid=valid)


@router.post("/reset")
def reset(
    request: Request,
    token: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    with hashing(), request.app.state.db.session() as s:
        user = user_for_token(s, request.app.state.settings.resolved_secret(), token)
        if user is None:
            return render_page(request, "reset.html", 400, token=token, valid=False)
        try:
            set_password(s, user, password)
        except ValueError as e:
            s.rollback()
            return render_page(request, "reset.html", 400, token=token, valid=True, error=str(e))
    return redirect("/signin?reset=1")
