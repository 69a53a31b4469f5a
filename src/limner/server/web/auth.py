"""Image Creator accounts: Argon2id password hashes (memory-hard), server-side sessions behind a
random HttpOnly/Secure/SameSite cookie, and double-submit CSRF tokens on every form."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request, Response
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from limner.errors import Busy, Forbidden, Unauthorized
from limner.store.db import User, WebSession, utcnow

SESSION_COOKIE = "limner_session"
CSRF_COOKIE = "limner_csrf"
SESSION_DAYS = 30
HASHER = PasswordHasher()  # Argon2id, 64 MiB, t=3 (argon2-cffi defaults, RFC 9106's second choice)
# Each hash holds 64 MiB for a fraction of a second: at most this many at once per process
# (twelve parallel sign-ins added 770 MB before), the rest wait briefly or get a 503.
HASHING = threading.BoundedSemaphore(2)
COMMON_PASSWORDS = {
    "password", "password1", "password12", "password123", "passw0rd", "1234567890", "12345678910",
    "0123456789", "qwertyuiop", "qwerty1234", "qwerty12345", "1q2w3e4r5t", "iloveyou12", "letmein123",
    "welcome123", "abcdefghij", "abc1234567", "aaaaaaaaaa", "admin12345", "limner1234",
}  # fmt: skip
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")


class NotSignedIn(Unauthorized):
    """A page that needs an account; a browser asking for it is sent to the sign-in page."""


class CsrfFailed(Forbidden):
    code = "csrf_failed"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@contextmanager
def hashing(timeout: float = 10.0) -> Iterator[None]:
    """One of the process's few password-hashing slots, or Busy (503) if none frees up soon."""
    if not HASHING.acquire(timeout=timeout):
        raise Busy("Too many sign-ins at once; try again in a few seconds.", retry_after=5)
    try:
        yield
    finally:
        HASHING.release()


def check_password(password: str) -> None:
    """A real password: ten characters that are not all blank, not one or two repeated, not one
    of the passwords everyone tries first."""
    if len(password) > 1024:
        raise ValueError("that password is too long")
    if len(password.strip()) < 10:
        raise ValueError("use a password of at least 10 characters (not counting spaces at the ends)")
    if len(set(password)) < 5 or password.strip().lower() in COMMON_PASSWORDS:
        raise ValueError("that password is too easy to guess; use a longer phrase or more different characters")


def create_user(session: Session, email: str, password: str) -> User | None:
    """A new account — or, if the email has one already, nothing: the caller answers the same
    either way, so sign-up does not tell who has an account (the same time is spent hashing)."""
    email = email.strip().lower()
    if not EMAIL.match(email):
        raise ValueError("enter a valid email address")
    check_password(password)
    digest = HASHER.hash(password)
    if session.scalar(select(User).where(User.email == email)) is not None:
        return None
    user = User(email=email, password_hash=digest)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # the same email signed up a moment ago, in parallel
        session.rollback()
        return None
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        HASHER.hash(password)  # spend the same time as a real check: no account enumeration by timing
        return None
    try:
        HASHER.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = HASHER.hash(password)
    return user


def start_session(session: Session, user: User, response: Response, secure: bool) -> None:
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            token_digest=_digest(token),
            user_id=user.id,
            expires=utcnow() + dt.timedelta(days=SESSION_DAYS),
        )
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_DAYS * 86400,
        httponly=True,
        secure=secure,
        samesite="lax",
        path="/",
    )


def end_session(session: Session, request: Request, response: Response, secure: bool) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        session.execute(delete(WebSession).where(WebSession.token_digest == _digest(token)))
    # the same flags as the cookie it replaces: a browser may refuse to let a plain cookie
    # overwrite a Secure one
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")


def user_from_request(session: Session, request: Request) -> User | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        return None
    ws = session.scalar(select(WebSession).where(WebSession.token_digest == _digest(token)))
    if ws is None or ws.expires < utcnow():
        return None
    return session.get(User, ws.user_id)


# -- CSRF: a random cookie that forms (hidden field) and scripts (header) must echo ----------------


def csrf_token(request: Request) -> str:
    """The token for this browser (set as a cookie by ``ensure_csrf_cookie``)."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = secrets.token_urlsafe(24)
        request.state.new_csrf = token
    return token


def ensure_csrf_cookie(request: Request, response: Response, secure: bool) -> None:
    new = getattr(request.state, "new_csrf", None)
    if new and not request.cookies.get(CSRF_COOKIE):
        response.set_cookie(CSRF_COOKIE, new, httponly=True, secure=secure, samesite="strict", path="/")


def check_csrf(request: Request, submitted: str | None) -> None:
    cookie = request.cookies.get(CSRF_COOKIE)
    given = submitted or request.headers.get("x-csrf-token")
    if not cookie or not given or not hmac.compare_digest(cookie, given):
        raise CsrfFailed("This form has expired or did not come from this site; reload the page and try again.")


def current_user(request: Request) -> User:
    with request.app.state.db.session() as s:
        user = user_from_request(s, request)
        if user is None:
            raise NotSignedIn("sign in first")
        s.expunge(user)
        return user


CurrentUser = Annotated[User, Depends(current_user)]
