"""The Image Creator: server-rendered pages (Jinja2) with a little JavaScript for live progress,
mask painting and copying. Every generation goes through the same engine, moderation and
storage as the API (``limner.server.generation``)."""

from __future__ import annotations

import asyncio
import io
import json
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from PIL import Image, UnidentifiedImageError
from sqlalchemy import delete, func, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from limner.engine import GenerationRequest
from limner.engine.engine import check_request
from limner.errors import Busy, InvalidRequest, LimnerError, ModerationBlocked, NotFound, RateLimited
from limner.server import sse
from limner.server.web.auth import (
    CurrentUser,
    authenticate,
    check_csrf,
    create_user,
    end_session,
    hashing,
    start_session,
)
from limner.server.web.pages import render_page
from limner.store import throttle
from limner.store.db import Creation, Job, StoredFile

router = APIRouter(tags=["image creator"], include_in_schema=False)
PER_PAGE = 24
STYLES = {
    "": "No style",
    "3D render": "3D render",
    "flat icon": "Flat icon",
    "cartoon emoji": "Cartoon emoji",
    "clip art": "Clip art",
    "black and white line icon": "Line art",
}
IMAGES_PER_CREATE = 4
JOB_STATUS = {  # as the job page says it (while running, the page's script shows the step)
    "queued": "Waiting for its turn…",
    "running": "Running…",
    "done": "Done",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "blocked": "Blocked",
}
MAX_MASK_PIXELS = 4096 * 4096


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# -- accounts --------------------------------------------------------------------------------------


@router.get("/signup", response_class=HTMLResponse)
def signup_page(request: Request) -> HTMLResponse:
    return render_page(request, "signup.html")


def _client(request: Request) -> str:
    """The caller's address (behind a proxy, run uvicorn with --proxy-headers so it is the real one)."""
    return request.client.host if request.client else "unknown"


def _too_many(request: Request, page: str, seconds: int, **ctx: object) -> HTMLResponse:
    minutes = max(1, round(seconds / 60))
    response = render_page(
        request, page, 429, error=f"Too many attempts; try again in {minutes} minute{'s' * (minutes != 1)}.", **ctx
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
        wait = throttle.retry_after(s, throttle.signup_address(request.app.state.settings), _client(request))
    if wait is not None:
        return _too_many(request, "signup.html", wait, email_value=email)
    try:
        with hashing(), db.session() as s:
            create_user(s, email, password)
            throttle.count(s, throttle.signup_address(request.app.state.settings), _client(request))
    except ValueError as e:
        return render_page(request, "signup.html", 400, error=str(e), email_value=email)
    return _redirect("/signin?created=1")


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request, created: bool = False) -> HTMLResponse:
    notice = "Your account is ready: sign in with your email and password." if created else None
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
    account, address = throttle.signin_account(settings), throttle.signin_address(settings)
    subjects = ((account, email), (address, _client(request)))
    with db.session() as s:
        waits = [w for limit, who in subjects if (w := throttle.retry_after(s, limit, who)) is not None]
    if waits:
        return _too_many(request, "signin.html", max(waits), email_value=email)
    with hashing(), db.session() as s:
        user = authenticate(s, email, password)
        if user is None:
            for limit, who in subjects:
                throttle.count(s, limit, who)
            return render_page(request, "signin.html", 401, error="Wrong email or password.", email_value=email)
        throttle.clear(s, account, email)
        response = _redirect("/")
        start_session(s, user, response, request.app.state.settings.cookie_secure)
    return response


@router.post("/signout")
def signout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf_token)
    response = _redirect("/signin")
    with request.app.state.db.session() as s:
        end_session(s, request, response, request.app.state.settings.cookie_secure)
    return response


# -- create ----------------------------------------------------------------------------------------


def _models(request: Request) -> list[dict]:
    out = []
    for m in request.app.state.engine.models():
        try:
            info = request.app.state.engine.backend(m["name"]).info()
            out.append({"name": m["name"], "sizes": info.sizes, "default": m["default"]})
        except LimnerError:
            continue
    return out


def _recent(request: Request, user_id: int, n: int = 8) -> list[Creation]:
    with request.app.state.db.session() as s:
        return list(
            s.scalars(select(Creation).where(Creation.user_id == user_id).order_by(Creation.created.desc()).limit(n))
        )


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: CurrentUser) -> HTMLResponse:
    return render_page(
        request,
        "create.html",
        models=_models(request),
        styles=STYLES,
        recent=_recent(request, user.id),
    )


def _start(
    request: Request, user, kind: str, req: GenerationRequest, settings: dict, source: str | None = None
) -> Response:
    """Moderate and validate first (a refusal costs nothing), then queue the job: it spends a
    boost if one is left, and counts against the day's allowance and the jobs in flight."""
    app = request.app
    try:
        app.state.policy.check_input(req.prompt)
        check_request(app.state.engine, req)
        job_id = app.state.jobs.submit(user.id, kind, req, source, settings)
    except ModerationBlocked as e:
        return render_page(
            request,
            "create.html",
            400,
            blocked=e.message,
            prompt_value=req.prompt,
            models=_models(request),
            styles=STYLES,
            recent=_recent(request, user.id),
        )
    except (InvalidRequest, RateLimited, Busy) as e:
        response = render_page(
            request,
            "create.html",
            400 if isinstance(e, InvalidRequest) else e.status,
            error=e.message,
            prompt_value=req.prompt,
            models=_models(request),
            styles=STYLES,
            recent=_recent(request, user.id),
        )
        if isinstance(e, RateLimited | Busy):
            response.headers["Retry-After"] = str(e.retry_after)
        return response
    return _redirect(f"/jobs/{job_id}")


@router.post("/create")
def create(
    request: Request,
    user: CurrentUser,
    prompt: Annotated[str, Form(max_length=2000)],
    model: Annotated[str, Form(max_length=200)] = "",
    size: Annotated[str, Form(max_length=20)] = "",
    style: Annotated[str, Form(max_length=60)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    if style and style not in STYLES:
        return render_page(
            request,
            "create.html",
            400,
            error="Unknown style.",
            prompt_value=prompt,
            models=_models(request),
            styles=STYLES,
            recent=_recent(request, user.id),
        )
    full = f"{prompt.strip()}, {style}" if style else prompt.strip()
    req = GenerationRequest(full, n=IMAGES_PER_CREATE, model=model or None, size=size or None)
    return _start(request, user, "create", req, {"prompt": prompt, "style": style, "model": model, "size": size})


# -- jobs ------------------------------------------------------------------------------------------


def _job(request: Request, user_id: int, job_id: str) -> Job:
    with request.app.state.db.session() as s:
        job = s.get(Job, job_id)
        if job is None or job.user_id != user_id:
            raise NotFound("no such job")
        return job


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str, user: CurrentUser) -> Response:
    try:
        job = _job(request, user.id, job_id)
    except NotFound:
        return render_page(request, "notfound.html", 404)
    with request.app.state.db.session() as s:
        creations = list(s.scalars(select(Creation).where(Creation.job_id == job_id).order_by(Creation.seed)))
    return render_page(request, "job.html", job=job, creations=creations, n=IMAGES_PER_CREATE, status_labels=JOB_STATUS)


@router.get("/jobs/{job_id}/events")
async def job_events(request: Request, job_id: str, user: CurrentUser) -> Response:
    """Server-sent events: the job's state each time it changes, until it ends. A stream holds no
    thread (it polls the job's live state, or its row when another process runs it), and each
    account may keep only a few open."""
    try:
        await run_in_threadpool(_job, request, user.id, job_id)
    except NotFound:
        return Response(status_code=404)
    streams = request.app.state.job_streams
    if streams.get(user.id, 0) >= request.app.state.settings.job_streams_per_account:
        return Response("Too many open progress streams; close a tab.", status_code=429, headers={"Retry-After": "5"})
    streams[user.id] = streams.get(user.id, 0) + 1
    jobs = request.app.state.jobs

    async def events() -> AsyncIterator[str]:
        try:
            seen, last_row = None, 0.0
            while True:
                st = jobs.progress(job_id)
                if st is not None:
                    snap = st.snapshot()
                    if snap != seen:
                        seen = snap
                        yield sse.data(snap)
                    await asyncio.sleep(0.25)
                    continue
                if time.monotonic() - last_row >= 1.0:  # queued, ended, or running in another process
                    last_row = time.monotonic()
                    out = await run_in_threadpool(jobs.outcome, job_id, 1.0)
                    if out != seen:
                        seen = out
                        yield sse.data(out)
                    if out["status"] not in ("queued", "running"):
                        return
                await asyncio.sleep(0.25)
        finally:
            streams[user.id] -= 1

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.post("/jobs/{job_id}/cancel")
def job_cancel(request: Request, job_id: str, user: CurrentUser, csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf_token)
    try:
        _job(request, user.id, job_id)
    except NotFound:
        return Response(status_code=404)
    request.app.state.jobs.cancel(job_id, user.id)
    return _redirect(f"/jobs/{job_id}")


# -- history and single images -----------------------------------------------------------------------


@router.get("/history", response_class=HTMLResponse)
def history(
    request: Request,
    user: CurrentUser,
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> HTMLResponse:
    cond = [Creation.user_id == user.id]
    if q.strip():
        pattern = "%" + q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        cond.append(Creation.prompt.ilike(pattern, escape="\\"))
    with request.app.state.db.session() as s:
        total = s.scalar(select(func.count(Creation.id)).where(*cond)) or 0
        items = list(
            s.scalars(
                select(Creation)
                .where(*cond)
                .order_by(Creation.created.desc(), Creation.id)
                .offset((page - 1) * PER_PAGE)
                .limit(PER_PAGE)
            )
        )
    pages = max(1, math.ceil(total / PER_PAGE))
    return render_page(request, "history.html", items=items, q=q, page=page, pages=pages, total=total)


def _creation(request: Request, user_id: int, creation_id: str) -> Creation | None:
    with request.app.state.db.session() as s:
        c = s.get(Creation, creation_id)
        return c if c is not None and c.user_id == user_id else None


@router.get("/images/{creation_id}", response_class=HTMLResponse)
def image_page(request: Request, creation_id: str, user: CurrentUser) -> Response:
    c = _creation(request, user.id, creation_id)
    if c is None:
        return render_page(request, "notfound.html", 404)
    return render_page(request, "image.html", c=c, params_json=json.dumps(c.params, indent=1, sort_keys=True))


@router.get("/images/{creation_id}/file")
def image_file(request: Request, creation_id: str, user: CurrentUser, download: bool = False) -> Response:
    c = _creation(request, user.id, creation_id)
    if c is None:
        return Response("not found", status_code=404)
    with request.app.state.db.session() as s:
        f = s.get(StoredFile, c.file_id)
    if f is None or not Path(f.path).exists():
        return Response("not found", status_code=404)
    headers = {"Cache-Control": "private, max-age=86400"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="limner-{c.seed}.png"'
    return FileResponse(f.path, media_type=f.mime, headers=headers)


@router.post("/images/{creation_id}/delete")
def image_delete(
    request: Request, creation_id: str, user: CurrentUser, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, csrf_token)
    c = _creation(request, user.id, creation_id)
    if c is None:
        return render_page(request, "notfound.html", 404)
    with request.app.state.db.session() as s:
        f = s.get(StoredFile, c.file_id)
        s.execute(delete(Creation).where(Creation.id == c.id))
        if f is not None:
            Path(f.path).unlink(missing_ok=True)
            s.delete(f)
    return _redirect("/history")


def _source_image(request: Request, c: Creation) -> Image.Image:
    with request.app.state.db.session() as s:
        f = s.get(StoredFile, c.file_id)
    return Image.open(f.path).convert("RGB")


@router.post("/images/{creation_id}/variations")
def image_variations(
    request: Request, creation_id: str, user: CurrentUser, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, csrf_token)
    c = _creation(request, user.id, creation_id)
    if c is None:
        return render_page(request, "notfound.html", 404)
    req = GenerationRequest(c.prompt, n=IMAGES_PER_CREATE, model=c.model, image=_source_image(request, c), strength=0.6)
    return _start(request, user, "variations", req, {"source": c.id}, source=c.id)


async def _painted_mask(upload: object) -> Image.Image | None:
    """The mask painted on the page (white = repaint) as an L image; None when nothing usable was
    sent: no file, not an image, too large, or nothing painted."""
    if not isinstance(upload, UploadFile):
        return None
    try:
        img = Image.open(io.BytesIO(await upload.read()))
        if img.width * img.height > MAX_MASK_PIXELS:
            return None
        mask = img.convert("L")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        return None
    return mask if mask.getbbox() is not None else None


@router.post("/images/{creation_id}/edit")
async def image_edit(request: Request, creation_id: str, user: CurrentUser) -> Response:
    async with request.form(max_files=1, max_fields=5) as form:  # closes the upload's temporary file
        token = form.get("csrf_token")
        check_csrf(request, token if isinstance(token, str) else None)
        c = _creation(request, user.id, creation_id)
        if c is None:
            return render_page(request, "notfound.html", 404)
        prompt = str(form.get("prompt") or "").strip()[:2000]
        mask = await _painted_mask(form.get("mask"))
    if mask is None:
        return render_page(
            request,
            "image.html",
            400,
            c=c,
            params_json=json.dumps(c.params, indent=1, sort_keys=True),
            error="Paint the area to change first.",
        )
    source = _source_image(request, c)
    req = GenerationRequest(
        prompt or c.prompt,
        n=IMAGES_PER_CREATE,
        model=c.model,
        image=source,
        mask=mask.resize(source.size, Image.Resampling.NEAREST),
    )
    return _start(request, user, "edit", req, {"source": c.id}, source=c.id)
