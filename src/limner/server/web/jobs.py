"""A job's page, its live progress (server-sent events) and cancelling it. The jobs themselves
are rows run by ``server.runner``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from limner.errors import NotFound
from limner.server import sse
from limner.server.web.auth import CurrentUser, check_csrf
from limner.server.web.create import IMAGES_PER_CREATE
from limner.server.web.pages import redirect, render_page
from limner.store.db import Creation, Job

router = APIRouter(tags=["image creator"], include_in_schema=False)
JOB_STATUS = {  # as the job page says it (while running, the page's script shows the step)
    "queued": "Waiting for its turn…",
    "running": "Running…",
    "done": "Done",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "blocked": "Blocked",
}


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
    n = job.request.get("n", IMAGES_PER_CREATE)
    return render_page(request, "job.html", job=job, creations=creations, n=n, status_labels=JOB_STATUS)


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
    return redirect(f"/jobs/{job_id}")
