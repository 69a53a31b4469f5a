"""Image Creator jobs, durable: each is a database row that moves queued → running → done |
failed | cancelled | blocked — never only an entry in memory.

Every server process runs a ``JobRunner``. It registers as a worker with a heartbeat, claims queued
jobs with one conditional UPDATE each (so two processes never run the same job), runs them on the
shared engine, and commits a job's images together with its new status, guarded by its claim.
A process that dies stops its heartbeat; after ``lease_s`` any runner puts that worker's running
jobs back in the queue (a job that has killed its worker ``MAX_ATTEMPTS`` times fails instead), so
after a crash every job ends done, failed or re-run, and what an account spent matches what it got.
Live progress (step, previews) is kept in memory by the process running the job, and dropped when
the job ends: the row holds the outcome.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, cast

from PIL import Image
from sqlalchemy import CursorResult, delete, func, select, update
from starlette.datastructures import State

from limner.engine import GenerationRequest, Progress
from limner.errors import Busy, Cancelled, LimnerError, ModerationBlocked, NotFound, RateLimited
from limner.server import generation
from limner.server.sse import png_b64
from limner.store import days
from limner.store.allowances import end_job, take_boost, take_job
from limner.store.db import Creation, Job, StoredFile, Worker, utcnow

log = logging.getLogger("limner.server")
FAST, SLOW = 10, 0  # engine priorities of the two lanes
MAX_ATTEMPTS = 3
ENDED = ("done", "failed", "cancelled", "blocked")


@dataclass
class JobState:
    """A running job's live progress, in the process that runs it."""

    status: str = "running"
    step: int = 0
    total: int = 0
    previews: list[str] = field(default_factory=list)  # data: URLs of low-resolution previews
    version: int = 0

    def update(self, **kw: object) -> None:
        for k, v in kw.items():
            setattr(self, k, v)
        self.version += 1

    def snapshot(self) -> dict:
        return {"status": self.status, "step": self.step, "total": self.total, "previews": self.previews}


# -- what a job asks for, as the row stores it -------------------------------------------------------


def spec_of(req: GenerationRequest, source: str | None) -> dict:
    """The request as JSON: everything to run it again after a restart. The seed is fixed now, so
    a re-run makes the same images; an edit's source is a creation id, its mask a small PNG."""
    req.seeds()
    mask = None
    if req.mask is not None:
        mask = png_b64(req.mask.convert("L"))
    fields = (
        "prompt",
        "negative_prompt",
        "n",
        "size",
        "seed",
        "num_inference_steps",
        "steps_scale",
        "guidance_scale",
        "model",
        "sampler",
    )
    return {
        **{k: getattr(req, k) for k in fields},
        "strength": req.strength,
        "source": source,
        "mask": mask,
    }


def _request_of(spec: dict, source: Image.Image | None) -> GenerationRequest:
    mask = Image.open(io.BytesIO(base64.b64decode(spec["mask"]))) if spec.get("mask") else None
    keys = ("prompt", "negative_prompt", "n", "size", "seed", "num_inference_steps", "guidance_scale", "model")
    return GenerationRequest(
        **{k: spec[k] for k in keys},
        sampler=spec.get("sampler"),  # rows from before the Advanced panel have none
        steps_scale=spec.get("steps_scale", 1.0),  # rows from before quality was relative have none
        image=source,
        mask=None if mask is None or source is None else mask.resize(source.size, Image.Resampling.NEAREST),
        strength=spec["strength"],
    )


class JobRunner:
    def __init__(self, app_state: State, *, concurrency: int = 4, lease_s: float = 30.0, poll_s: float = 1.0):
        self.state = app_state
        self.worker = f"w-{secrets.token_hex(6)}"
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.live: dict[str, JobState] = {}
        self._outcomes: dict[str, tuple[float, dict]] = {}
        self._cancels: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._slots = threading.BoundedSemaphore(concurrency)
        self._running: set[threading.Thread] = set()
        with self.state.db.session() as s:
            s.add(Worker(id=self.worker, host=socket.gethostname()[:100], pid=os.getpid(), heartbeat=utcnow()))
        self._reclaim()
        self._threads = [
            threading.Thread(target=self._claim_loop, name="jobs-claim", daemon=True),
            threading.Thread(target=self._heartbeat_loop, name="jobs-heartbeat", daemon=True),
        ]
        for t in self._threads:
            t.start()

    # -- what the pages call ---------------------------------------------------------------------

    def submit(self, user_id: int, kind: str, req: GenerationRequest, source: str | None, settings: dict) -> str:
        """Queue a job (already moderated and validated), or raise TooManyJobs / Busy. Spends a
        boost when one is left; all counters move in the one transaction that inserts the row."""
        cfg = self.state.settings
        job_id = "job-" + secrets.token_hex(10)
        with self.state.db.session() as s:
            refused = take_job(s, user_id, cfg.creator_daily_jobs, cfg.creator_active_jobs)
            if refused:
                raise RateLimited(refused[0].upper() + refused[1:] + ".", retry_after=60, code="too_many_jobs")
            waiting = s.scalar(select(func.count(Job.id)).where(Job.status == "queued")) or 0
            if waiting >= cfg.max_queued_jobs:
                s.rollback()
                raise Busy("The server has more work queued than it takes; try again in a minute.", retry_after=60)
            lane = "fast" if take_boost(s, user_id, cfg.creator_daily_boosts) else "slow"
            s.add(
                Job(
                    id=job_id,
                    user_id=user_id,
                    kind=kind,
                    prompt=req.prompt,
                    settings=settings,
                    request=spec_of(req, source),
                    lane=lane,
                    priority=FAST if lane == "fast" else SLOW,
                    status="queued",
                )
            )
        self._wake.set()
        return job_id

    def cancel(self, job_id: str, user_id: int) -> None:
        """A queued job ends at once (and gives back what it took); a running one stops at its next
        step, wherever it runs."""
        with self.state.db.session() as s:
            job = s.get(Job, job_id)
            if job is None or job.user_id != user_id:
                return
            ended = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "queued")
                .values(status="cancelled", error="cancelled", finished=utcnow())
            )
            if _count(ended):
                end_job(s, user_id, False, job.lane == "fast", days.day_of(job.created))
                return
            s.execute(update(Job).where(Job.id == job_id, Job.status == "running").values(cancel_requested=True))
        with self._lock:
            event = self._cancels.get(job_id)
        if event is not None:
            event.set()

    def progress(self, job_id: str) -> JobState | None:
        """Live progress, if this process runs the job now."""
        with self._lock:
            return self.live.get(job_id)

    def outcome(self, job_id: str, max_age: float = 0.0) -> dict:
        """The job as its row has it: status, error, and its images' ids once done. ``max_age``:
        a reading that recent will do (many progress streams of one job share one query)."""
        now = time.monotonic()
        with self._lock:
            cached = self._outcomes.get(job_id)
        if cached is not None and now - cached[0] <= max_age:
            return cached[1]
        out = self._read_outcome(job_id)
        with self._lock:
            if len(self._outcomes) > 10_000:
                self._outcomes.clear()
            self._outcomes[job_id] = (now, out)
        return out

    def _read_outcome(self, job_id: str) -> dict:
        with self.state.db.session() as s:
            job = s.get(Job, job_id)
            if job is None:
                return {"status": "missing", "error": None, "creations": []}
            ids = list(s.scalars(select(Creation.id).where(Creation.job_id == job_id).order_by(Creation.seed)))
            return {"status": job.status, "error": job.error, "creations": ids}

    def close(self, grace_s: float = 30.0) -> None:
        """Stop claiming; give running jobs ``grace_s`` to finish, then stop them and put them back
        in the queue for the next start (nothing accepted is lost)."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + grace_s
        for t in list(self._running):
            t.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            for event in self._cancels.values():
                event.set()
        for t in list(self._running):
            t.join(10)
        with self.state.db.session() as s:
            s.execute(
                update(Job)
                .where(Job.worker == self.worker, Job.status == "running")
                .values(status="queued", worker=None, attempts=Job.attempts - 1)  # an orderly stop is not an attempt
            )
            s.execute(delete(Worker).where(Worker.id == self.worker))

    # -- the worker --------------------------------------------------------------------------------

    def _claim_loop(self) -> None:
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=self.poll_s):
                continue
            job = None
            try:
                job = self._claim()
            except Exception:
                log.exception("could not claim a job")
            if job is None:
                self._slots.release()
                self._wake.wait(self.poll_s)
                self._wake.clear()
                continue
            t = threading.Thread(target=self._run, args=(job,), name=job.id, daemon=True)
            self._running.add(t)
            t.start()

    def _claim(self) -> Job | None:
        """The next queued job (fast lane first), claimed by one conditional UPDATE; None if the
        queue is empty. Another process may win the race for a row: then try the next."""
        if self._stop.is_set():
            return None
        for _ in range(10):
            with self.state.db.session() as s:
                job_id = s.scalar(
                    select(Job.id).where(Job.status == "queued").order_by(Job.priority.desc(), Job.created).limit(1)
                )
                if job_id is None:
                    return None
                won = s.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.status == "queued")
                    .values(status="running", worker=self.worker, attempts=Job.attempts + 1, started=utcnow())
                )
                if _count(won):
                    job = s.get(Job, job_id)
                    s.expunge(job)
                    return job
        return None

    def _run(self, job: Job) -> None:
        app = self.state
        cancel = threading.Event()
        st = JobState(total=job.request.get("num_inference_steps") or 0)
        with self._lock:
            self.live[job.id] = st
            self._cancels[job.id] = cancel
        status, error, images = "done", None, []
        try:
            req = _request_of(job.request, self._source(job))
            req.priority = job.priority
            req.previews = True
            req.cancel = cancel

            def on_progress(p: Progress) -> None:
                previews = st.previews
                if p.previews and (p.step % 2 == 0 or p.step == p.total):
                    previews = [_data_url(im) for im in p.previews]
                st.update(step=p.step, total=p.total, previews=previews)

            req.on_progress = on_progress
            result = generation.run(
                app.db, app.engine, app.policy, req, endpoint="creator", request_id=job.id, user_id=job.user_id,
                provenance=app.provenance,
            )  # fmt: skip
            images = result.images
        except Cancelled:
            status, error = "cancelled", "cancelled"
        except ModerationBlocked as e:
            status, error = "blocked", e.message
        except LimnerError as e:
            status, error = "failed", e.message
        except Exception as e:
            log.exception("job %s failed", job.id)
            status, error = "failed", f"internal error ({type(e).__name__})"
        try:
            if not (self._stop.is_set() and status == "cancelled"):  # stopped by close(): back in the queue
                self._finish(job, status, error, images)
        finally:
            with self._lock:
                self.live.pop(job.id, None)
                self._cancels.pop(job.id, None)
            self._running.discard(threading.current_thread())
            self._slots.release()

    def _source(self, job: Job) -> Image.Image | None:
        source = job.request.get("source")
        if not source:
            return None
        with self.state.db.session() as s:
            row = s.get(Creation, source)
            f = s.get(StoredFile, row.file_id) if row is not None else None
        if f is None:
            raise NotFound("the image this job edits was deleted", code="image_not_found")
        return Image.open(f.path).convert("RGB")

    def _finish(self, job: Job, status: str, error: str | None, images: list) -> None:
        """Store the images and the new status in one transaction, if the claim still holds."""
        app = self.state
        saved: list[StoredFile] = []
        with app.db.session() as s:
            won = s.execute(
                update(Job)
                .where(Job.id == job.id, Job.worker == self.worker, Job.status == "running")
                .values(status=status, error=error, finished=utcnow())
            )
            if not _count(won):  # the claim was lost (taken over after a stall): the other run counts
                s.rollback()
                return
            for im in images:
                row = app.files.save(s, im.png_bytes(), "png", user_id=job.user_id, meta=im.parameters)
                saved.append(row)
                s.add(
                    Creation(
                        id="img-" + secrets.token_hex(10),
                        user_id=job.user_id,
                        job_id=job.id,
                        file_id=row.id,
                        prompt=im.prompt,
                        seed=im.seed,
                        model=im.model,
                        params=im.parameters,
                    )
                )
            end_job(s, job.user_id, status == "done", job.lane == "fast", days.day_of(job.created))

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                with self.state.db.session() as s:
                    s.execute(update(Worker).where(Worker.id == self.worker).values(heartbeat=utcnow()))
                    asked = set(
                        s.scalars(select(Job.id).where(Job.worker == self.worker, Job.cancel_requested.is_(True)))
                    )
                with self._lock:
                    for job_id in asked & set(self._cancels):
                        self._cancels[job_id].set()
                self._reclaim()
            except Exception:
                log.exception("job heartbeat failed")

    def _reclaim(self) -> None:
        """Jobs of workers whose heartbeat stopped go back in the queue, or fail after
        ``MAX_ATTEMPTS`` runs (giving back what they took)."""
        stale = utcnow() - dt.timedelta(seconds=self.lease_s)
        with self.state.db.session() as s:
            dead = list(s.scalars(select(Worker.id).where(Worker.heartbeat < stale, Worker.id != self.worker)))
            if not dead:
                return
            for job in s.scalars(select(Job).where(Job.worker.in_(dead), Job.status == "running")).all():
                if job.attempts >= MAX_ATTEMPTS:
                    lost = update(Job).where(Job.id == job.id, Job.status == "running", Job.worker == job.worker)
                    if _count(s.execute(lost.values(status="failed", error="the server stopped while making it",
                                                    finished=utcnow()))):  # fmt: skip
                        end_job(s, job.user_id, False, job.lane == "fast", days.day_of(job.created))
                else:
                    s.execute(
                        update(Job)
                        .where(Job.id == job.id, Job.status == "running", Job.worker == job.worker)
                        .values(status="queued", worker=None)
                    )
            s.execute(delete(Worker).where(Worker.id.in_(dead)))
        self._wake.set()


def _count(result: Any) -> int:
    """How many rows an UPDATE changed."""
    return cast(CursorResult, result).rowcount


def _data_url(img: Image.Image) -> str:
    return "data:image/png;base64," + png_b64(img)
