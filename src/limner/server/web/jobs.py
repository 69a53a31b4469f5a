"""Image Creator jobs: boosts (a daily allowance of fast-lane generations), the run itself on the
shared engine, and live progress for the page (kept in memory while a job runs)."""

from __future__ import annotations

import base64
import io
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import CursorResult, Update, update
from sqlalchemy.orm import Session
from starlette.datastructures import State

from limner.engine import GenerationRequest, Progress
from limner.errors import Cancelled, LimnerError, ModerationBlocked
from limner.server import generation
from limner.server.db import Creation, Job, User

FAST, SLOW = 10, 0  # engine priorities of the two lanes


def today() -> int:
    return int(time.time() // 86400)


def boosts_left(user: User, allowance: int) -> int:
    return allowance if user.boost_day != today() else max(0, allowance - user.boosts_used)


def refill_in_seconds() -> int:
    return 86400 - int(time.time() % 86400)


def take_boost(session: Session, user_id: int, allowance: int) -> bool:
    """Spend one boost if any is left today (conditional UPDATEs: concurrency-safe)."""
    if allowance < 1:
        return False
    day = today()
    first_today = update(User).where(User.id == user_id, User.boost_day != day).values(boost_day=day, boosts_used=1)
    if _rows(session, first_today):
        return True
    another = (
        update(User)
        .where(User.id == user_id, User.boost_day == day, User.boosts_used < allowance)
        .values(boosts_used=User.boosts_used + 1)
    )
    return bool(_rows(session, another))


def _rows(session: Session, statement: Update) -> int:
    """How many rows an UPDATE changed."""
    return cast(CursorResult, session.execute(statement)).rowcount


def give_back_boost(session: Session, user_id: int) -> None:
    session.execute(
        update(User)
        .where(User.id == user_id, User.boost_day == today(), User.boosts_used > 0)
        .values(boosts_used=User.boosts_used - 1)
    )


@dataclass
class JobState:
    status: str = "queued"
    step: int = 0
    total: int = 0
    previews: list[str] = field(default_factory=list)  # data: URLs of low-resolution previews
    creations: list[str] = field(default_factory=list)
    error: str | None = None
    version: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def update(self, **kw: object) -> None:
        with self.changed:
            for k, v in kw.items():
                setattr(self, k, v)
            self.version += 1
            self.changed.notify_all()

    def snapshot(self) -> dict:
        return {
            "status": self.status,
            "step": self.step,
            "total": self.total,
            "previews": self.previews,
            "creations": self.creations,
            "error": self.error,
            "version": self.version,
        }


class JobRunner:
    """Starts jobs on threads (the engine batches and prioritises them) and tracks their progress."""

    def __init__(self, app_state: State):
        self.state = app_state
        self.jobs: dict[str, JobState] = {}
        self._lock = threading.Lock()

    def get(self, job_id: str) -> JobState | None:
        with self._lock:
            return self.jobs.get(job_id)

    def start(self, user: User, kind: str, req: GenerationRequest, settings: dict, lane: str) -> str:
        job_id = "job-" + secrets.token_hex(10)
        with self.state.db.session() as s:
            s.add(
                Job(
                    id=job_id,
                    user_id=user.id,
                    kind=kind,
                    prompt=req.prompt,
                    settings=settings,
                    lane=lane,
                    status="queued",
                )
            )
        st = JobState(total=req.num_inference_steps or 0)
        with self._lock:
            self.jobs[job_id] = st
        req.priority = FAST if lane == "fast" else SLOW
        req.previews = True
        req.cancel = st.cancel

        def on_progress(p: Progress) -> None:
            previews = st.previews
            if p.previews and (p.step % 2 == 0 or p.step == p.total):
                previews = [_data_url(im) for im in p.previews]
            st.update(status="running", step=p.step, total=p.total, previews=previews)

        req.on_progress = on_progress
        threading.Thread(target=self._run, args=(job_id, user.id, lane, req, st), daemon=True, name=job_id).start()
        return job_id

    def _run(self, job_id: str, user_id: int, lane: str, req: GenerationRequest, st: JobState) -> None:
        app = self.state
        status, error, ids = "done", None, []
        try:
            result = generation.run(
                app.db,
                app.engine,
                app.policy,
                req,
                endpoint="creator",
                request_id=job_id,
                user_id=user_id,
            )
            with app.db.session() as s:
                for im in result.images:
                    row = app.files.save(s, im.png_bytes(), "png", user_id=user_id, meta=im.parameters)
                    cid = "img-" + secrets.token_hex(10)
                    s.add(
                        Creation(
                            id=cid,
                            user_id=user_id,
                            job_id=job_id,
                            file_id=row.id,
                            prompt=im.prompt,
                            seed=im.seed,
                            model=im.model,
                            params=im.parameters,
                        )
                    )
                    ids.append(cid)
        except Cancelled:
            status, error = "cancelled", "cancelled"
        except ModerationBlocked as e:
            status, error = "blocked", e.message
        except LimnerError as e:
            status, error = "failed", e.message
        except Exception as e:
            status, error = "failed", f"internal error ({type(e).__name__})"
        if status != "done" and lane == "fast":
            with app.db.session() as s:
                give_back_boost(s, user_id)
        with app.db.session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(status=status, error=error))
        st.update(status=status, error=error, creations=ids)


def _data_url(img) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
