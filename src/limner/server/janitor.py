"""Housekeeping on a timer: stored API images past their retention are deleted (file and row),
arena battles left without a vote are dropped (with a live battle's images), and attempt
counters of windows long gone are dropped. Runs at start-up and every ``every_s``
seconds in a thread of its own; each chore is one short transaction, safe to run in several
processes at once."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from pathlib import Path

from sqlalchemy import delete, select
from starlette.datastructures import State

from limner.store import days
from limner.store.db import StoredFile, Throttle, utcnow

log = logging.getLogger("limner.server")


def sweep_files(state: State) -> int:
    """Delete images made for ``url`` responses (files of an API key) older than the retention;
    → how many. Image Creator and arena images are kept: their owners delete them."""
    hours = max(state.settings.file_retention_hours, state.settings.url_expiry_minutes / 60)
    cutoff = utcnow() - dt.timedelta(hours=hours)
    with state.db.session() as s:
        rows = list(s.scalars(select(StoredFile).where(StoredFile.key_id.is_not(None), StoredFile.created < cutoff)))
        for row in rows:
            Path(row.path).unlink(missing_ok=True)
        s.execute(delete(StoredFile).where(StoredFile.id.in_([r.id for r in rows])))
    return len(rows)


def sweep_battles(state: State) -> int:
    """Arena battles left without a vote past ``arena_unvoted_hours`` (``Arena.sweep_unvoted``)."""
    return state.arena.sweep_unvoted(state.settings.arena_unvoted_hours, now=time.time())


def sweep_throttles(state: State, now: float | None = None) -> None:
    """Counters of windows that began a day ago or more matter to no limit (windows are ≤ 1 h)."""
    day_ago = (days.now() if now is None else now) - days.DAY
    with state.db.session() as s:
        s.execute(delete(Throttle).where(Throttle.window < day_ago))


class Janitor:
    def __init__(self, state: State, every_s: float = 600.0):
        self.state = state
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="janitor", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            for chore in (sweep_files, sweep_battles, sweep_throttles):
                try:
                    chore(self.state)
                except Exception:
                    log.exception("housekeeping failed (%s)", chore.__name__)
            if self._stop.wait(self.every_s):
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
