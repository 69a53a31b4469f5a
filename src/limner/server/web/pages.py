"""Server-rendered pages: the templates, and one function that renders any of them with what
every page shows (the account, its boosts, the CSRF token)."""

from __future__ import annotations

import math
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from limner.engine.request import MAX_PROMPT_CHARS
from limner.server.web.auth import csrf_token, ensure_csrf_cookie, user_from_request
from limner.store.allowances import boosts_left, refill_in_seconds

templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
templates.env.globals["max_prompt_chars"] = MAX_PROMPT_CHARS  # the forms' limit is the engine's


def render_page(request: Request, name: str, status: int = 200, **ctx: object) -> HTMLResponse:
    settings = request.app.state.settings
    with request.app.state.db.session() as s:
        user = user_from_request(s, request)
        boosts = boosts_left(user, settings.creator_daily_boosts) if user else 0
        email = user.email if user else None
    response = templates.TemplateResponse(
        request,
        name,
        {
            "csrf": csrf_token(request),
            "email": email,
            "boosts": boosts,
            "allowance": settings.creator_daily_boosts,
            "refill_hours": math.ceil(refill_in_seconds() / 3600),
            "arena_open": arena_open(request),
            **ctx,
        },
        status_code=status,
    )
    ensure_csrf_cookie(request, response, settings.cookie_secure)
    return response


def arena_open(request: Request) -> bool:
    """The arena needs two models to compare: with fewer it is hidden rather than a dead end."""
    return len(request.app.state.engine.models()) >= 2


def is_page(request: Request) -> bool:
    """A browser asking for a page (a navigation or a form's post, which accept HTML), whose
    errors a person reads: never the Images API, whatever its caller accepts."""
    return "text/html" in request.headers.get("accept", "") and not request.url.path.startswith("/v1/")


def redirect(url: str) -> RedirectResponse:
    """After a form's post: see the page at ``url`` (303, so the browser GETs it)."""
    return RedirectResponse(url, status_code=303)
