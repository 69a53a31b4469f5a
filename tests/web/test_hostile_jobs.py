"""Hostile conditions for Image Creator jobs (hardening items 5, 6, 8): a server killed mid-job
(kill -9 and SIGTERM), a flood of progress streams, and a flood of creates. Jobs are rows: after
a crash every job ends done, failed or re-run, and what an account spent matches what it got."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select, text
from web_helpers import PASSWORD, new_email, wait_job

from limner.store.db import Creation, Job, User

pytestmark = pytest.mark.hostile
HERE = Path(__file__).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``serve_tiny.py`` in a child process, restartable on the same data folder."""

    def __init__(self, data: Path, model: Path, delay: float, database_url: str | None = None):
        self.data, self.model, self.delay, self.database_url = data, model, delay, database_url
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None
        self.clients: list[httpx.Client] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "LIMNER_DATABASE_URL": self.database_url or "",
            "PYTHONPATH": os.pathsep.join([str(HERE.parents[1] / "src"), os.environ.get("PYTHONPATH", "")]),
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "serve_tiny.py"),
                str(self.data),
                str(self.model),
                str(self.port),
                str(self.delay),
            ],
            env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def stop(self, sig: int) -> float:
        """Send ``sig``; → seconds until the process was gone."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(sig)
        self.proc.wait(60)
        return time.monotonic() - started


@pytest.fixture
def server(tmp_path: Path, tiny_model: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data", tiny_model, delay=0.15)
    yield srv
    for client in srv.clients:
        client.close()
    if srv.proc is not None and srv.proc.poll() is None:
        srv.proc.kill()
        srv.proc.wait()


def _account(server: Server) -> httpx.Client:
    client = httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)
    server.clients.append(client)
    client.get("/signup")
    email = new_email()
    for path in ("/signup", "/signin"):
        r = client.post(path, data={"email": email, "password": PASSWORD, "csrf_token": client.cookies["limner_csrf"]})
        assert r.status_code == 303, r.text
    return client


def _healthz(server: Server) -> float:
    with httpx.Client(base_url=server.url, timeout=5) as client:  # connected before the clock starts
        client.get("/healthz")
        started = time.perf_counter()
        assert client.get("/healthz").status_code == 200
        return time.perf_counter() - started


def _create(client: httpx.Client, prompt: str = "a red apple") -> str:
    r = client.post("/create", data={"prompt": prompt, "csrf_token": client.cookies["limner_csrf"]})
    assert r.status_code == 303, r.text
    return r.headers["location"].removeprefix("/jobs/")


def _db(server: Server) -> sqlite3.Connection:
    return sqlite3.connect(server.data / "limner.db")


def _wait_status(server: Server, job: str, wanted: set[str], timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _db(server) as db:
            (status,) = db.execute("SELECT status FROM jobs WHERE id = ?", (job,)).fetchone()
        if status in wanted:
            return status
        time.sleep(0.1)
    raise TimeoutError(f"job {job} stayed {status}")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_job_survives_its_server_dying(server, sig):
    server.start()
    client = _account(server)
    job = _create(client)
    _wait_status(server, job, {"running"})
    time.sleep(0.5)  # a few steps in
    seconds = server.stop(sig)
    if sig == signal.SIGTERM:
        assert seconds < 15  # a deadline, not a hang until killed
    with _db(server) as db:
        (status,) = db.execute("SELECT status FROM jobs WHERE id = ?", (job,)).fetchone()
    assert status in ("queued", "running")  # accepted work is still there
    server.start()  # the same data folder: the job is picked up again
    assert _wait_status(server, job, {"done", "failed", "cancelled", "blocked"}) == "done"
    with _db(server) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM creations WHERE job_id = ?", (job,)).fetchone() == (4,)
        boosts, active = db.execute("SELECT boosts_used, active_jobs FROM users").fetchone()
    assert (boosts, active) == (1, 0)  # one delivered job, one boost; nothing left in flight
    r = client.get(f"/jobs/{job}")
    assert r.status_code == 200 and r.text.count("/file") == 4
    server.stop(signal.SIGTERM)


def test_fifty_open_progress_streams_leave_the_server_responsive(server):
    server.delay = 5.0  # the jobs stay queued or running, and their streams open, for the whole test
    server.start()
    clients = [_account(server) for _ in range(7)]
    jobs = [_create(c, f"a slow apple {i}") for i, c in enumerate(clients)]

    streams = []  # the context managers must stay referenced: collected, they close their stream

    def open_stream(k: int) -> httpx.Response:
        client, job = clients[k % 7], jobs[k % 7]
        cm = client.stream("GET", f"/jobs/{job}/events")
        streams.append(cm)
        return cm.__enter__()

    try:
        codes = [open_stream(k).status_code for k in range(50)]
        assert codes.count(200) == 50 - codes.count(429) and codes.count(200) >= 49
        times = sorted(_healthz(server) for _ in range(20))
        median, p90 = times[10], times[18]
        # on a shared 2-core machine one reading in twenty can be slow for reasons of its own
        assert p90 < 0.1, f"/healthz took {median * 1000:.0f} ms (median), {p90 * 1000:.0f} ms (90th) with 50 streams"
        extra = [open_stream(0).status_code for _ in range(2)]  # the first account has 8 open now
        assert extra == [429, 429]
    finally:
        for cm in streams:
            cm.__exit__(None, None, None)
    server.stop(signal.SIGTERM)


def test_a_flood_of_creates_is_bounded(app, account):
    """Thirty rapid presses of Create: the account's jobs in flight stay at the limit (each was a
    thread before, and unlimited), the rest are told to wait, and every accepted job finishes."""
    a = account()
    backend = app.state.engine.backend("tiny")
    backend.step_delay = 0.1  # no job ends during the burst
    try:
        with ThreadPoolExecutor(10) as pool:
            codes = list(pool.map(lambda i: a.post("/create", prompt=f"apple {i}").status_code, range(30)))
    finally:
        backend.step_delay = 0.0
    assert codes.count(303) == app.state.settings.creator_active_jobs and codes.count(429) == 30 - codes.count(303)
    with app.state.db.session() as s:
        user_id = s.scalar(select(User.id).where(User.email == a.email))
        jobs = list(s.scalars(select(Job.id).where(Job.user_id == user_id)))
    assert len(jobs) == codes.count(303)
    for job in jobs:
        wait_job(app, job)
    with app.state.db.session() as s:
        assert s.scalar(select(User.active_jobs).where(User.id == user_id)) == 0
        assert s.scalar(select(func.count(Creation.id)).where(Creation.user_id == user_id)) == 4 * len(jobs)


def test_two_processes_on_postgresql_share_the_queue_and_run_each_job_once(tmp_path, tiny_model, pg_url):
    servers = [Server(tmp_path / name, tiny_model, delay=0.01, database_url=pg_url) for name in ("a", "b")]
    try:
        for srv in servers:
            srv.start()
        jobs = []
        for k in range(4):  # accounts made on either server; three jobs each (the per-account limit)
            client = _account(servers[k % 2])
            jobs += [_create(client, f"apple {k}.{i}") for i in range(3)]
        engine = create_engine(pg_url)
        deadline = time.monotonic() + 120
        with engine.connect() as db:
            while time.monotonic() < deadline:
                left = db.execute(text("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')")).scalar()
                db.rollback()
                if left == 0:
                    break
                time.sleep(0.2)
            statuses = dict(db.execute(text("SELECT status, count(*) FROM jobs GROUP BY status")).all())
            runs = dict(db.execute(text("SELECT request_id, count(*) FROM usage GROUP BY request_id")).all())
            images = dict(db.execute(text("SELECT job_id, count(*) FROM creations GROUP BY job_id")).all())
            workers = db.execute(text("SELECT count(DISTINCT worker) FROM jobs")).scalar()
        engine.dispose()
        assert statuses == {"done": 12}
        assert runs == dict.fromkeys(jobs, 1)  # every job generated exactly once
        assert images == dict.fromkeys(jobs, 4)
        assert workers == 2  # both processes took jobs from the one queue
    finally:
        for srv in servers:
            for client in srv.clients:
                client.close()
            if srv.proc is not None and srv.proc.poll() is None:
                srv.stop(signal.SIGTERM)
