"""Image Creator accounts: Argon2id password hashes (memory-hard), server-side sessions behind a
random HttpOnly/Secure/SameSite cookie, and double-submit CSRF tokens on every form."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request, Response
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from limner.errors import LimnerError
from limner.server.db import User, WebSession, utcnow

SESSION_COOKIE = "limner_session"
CSRF_COOKIE = "limner_csrf"
SESSION_DAYS = 30
HASHER = PasswordHasher()  # Argon2id, 64 MiB, t=3 (argon2-cffi defaults, RFC 9106's second choice)
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")


class NotSignedIn(LimnerError):
    status = 401


class CsrfFailed(LimnerError):
    status = 403
    code = "csrf_failed"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session: Session, email: str, password: str) -> User:
    email = email.strip().lower()
    if not EMAIL.match(email):
        raise ValueError("enter a valid email address")
    if len(password) < 10:
        raise ValueError("use a password of at least 10 characters")
    if len(password) > 1024:
        raise ValueError("that password is too long")
    if session.scalar(select(User).where(User.email == email)) is not None:
        raise ValueError("an account with this email already exists; sign in instead")
    user = User(email=email, password_hash=HASHER.hash(password))
    session.add(user)
    session.flush()
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
