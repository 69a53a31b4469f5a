"""Storage: SQLAlchemy tables and sessions. SQLite by default, PostgreSQL by URL; the schema is
created and upgraded by Alembic migrations (``limner/store/migrations``)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from limner.errors import LimnerError


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), index=True)  # first characters, to find the row
    salt: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(128))  # sha256(salt + key), hex
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    images_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    images_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    minute: Mapped[int] = mapped_column(BigInteger, default=0)  # current minute bucket (epoch minutes)
    used_minute: Mapped[int] = mapped_column(Integer, default=0)
    day: Mapped[int] = mapped_column(Integer, default=0)  # current day bucket (epoch days, UTC)
    used_day: Mapped[int] = mapped_column(Integer, default=0)
    size_policy: Mapped[str | None] = mapped_column(String(16), nullable=True)  # None: the server's
    operator: Mapped[bool] = mapped_column(Boolean, default=False)  # may see what a watermark resolves to
    watermark: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # None: the server's setting
    content_credentials: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # None: the server's setting


class Usage(Base):
    __tablename__ = "usage"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    request_id: Mapped[str] = mapped_column(String(64))
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    endpoint: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    images: Mapped[int] = mapped_column(Integer, default=0)
    pixels: Mapped[int] = mapped_column(BigInteger, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(32))


class StoredFile(Base):
    """A generated image kept on disk for ``url`` responses and the Image Creator's history."""

    __tablename__ = "files"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    mime: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    bytes: Mapped[int] = mapped_column(Integer)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)


class User(Base):
    """An Image Creator account."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    boost_day: Mapped[int] = mapped_column(Integer, default=0)  # UTC day of ``boosts_used``
    boosts_used: Mapped[int] = mapped_column(Integer, default=0)
    jobs_day: Mapped[int] = mapped_column(Integer, default=0)  # UTC day of ``jobs_today``
    jobs_today: Mapped[int] = mapped_column(Integer, default=0)
    active_jobs: Mapped[int] = mapped_column(Integer, default=0)  # queued or running now


class WebSession(Base):
    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the cookie value
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires: Mapped[dt.datetime] = mapped_column(DateTime)


class Job(Base):
    """One press of "Create": a prompt and its settings, making several images. The row is the
    job (``server.runner``): its request, its state, and which worker has claimed it."""

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # create | variations | edit
    prompt: Mapped[str] = mapped_column(Text)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)  # as the form had them (for the page)
    request: Mapped[dict] = mapped_column(JSON, default=dict)  # what to generate, seed fixed
    lane: Mapped[str] = mapped_column(String(8))  # fast | slow
    priority: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(
        String(16), index=True
    )  # queued | running | done | failed | cancelled | blocked
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)  # while running
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    started: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    finished: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Worker(Base):
    """A server process that runs jobs, alive while its heartbeat is recent."""

    __tablename__ = "workers"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    host: Mapped[str] = mapped_column(String(100))
    pid: Mapped[int] = mapped_column(Integer)
    heartbeat: Mapped[dt.datetime] = mapped_column(DateTime)


class Creation(Base):
    """One image of a job, with what made it."""

    __tablename__ = "creations"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    file_id: Mapped[str] = mapped_column(ForeignKey("files.id"))
    prompt: Mapped[str] = mapped_column(Text)
    seed: Mapped[int] = mapped_column(BigInteger)
    model: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)


class ArenaImage(Base):
    """A pre-generated image in the curated pool, so battles start instantly."""

    __tablename__ = "arena_images"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prompt: Mapped[str] = mapped_column(Text, index=True)
    model: Mapped[str] = mapped_column(String(200), index=True)
    file_id: Mapped[str] = mapped_column(ForeignKey("files.id"))
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ArenaBattle(Base):
    __tablename__ = "arena_battles"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    prompt: Mapped[str] = mapped_column(Text)
    categories: Mapped[list] = mapped_column(JSON, default=list)
    model_a: Mapped[str] = mapped_column(String(200))
    model_b: Mapped[str] = mapped_column(String(200))
    file_a: Mapped[str] = mapped_column(ForeignKey("files.id"))
    file_b: Mapped[str] = mapped_column(ForeignKey("files.id"))
    source: Mapped[str] = mapped_column(String(16))  # pool | live
    voter: Mapped[str] = mapped_column(String(80), index=True)
    shown_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    voted_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class ArenaVoter(Base):
    __tablename__ = "arena_voters"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)  # "user:42" or "anon:<random>"
    day: Mapped[int] = mapped_column(Integer, default=0)
    votes_day: Mapped[int] = mapped_column(Integer, default=0)
    votes: Mapped[int] = mapped_column(Integer, default=0)
    picked_a: Mapped[int] = mapped_column(Integer, default=0)
    picked_b: Mapped[int] = mapped_column(Integer, default=0)
    fast: Mapped[int] = mapped_column(Integer, default=0)  # votes cast sooner than a person can look
    live_day: Mapped[int] = mapped_column(Integer, default=0)  # UTC day of ``live_today``
    live_today: Mapped[int] = mapped_column(Integer, default=0)  # live battles started that day
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)


class Mark(Base):
    """One watermarked image: the mark carries this row's id (encrypted), so ``limner verify``
    can tell its operator which key or account, which model and when."""

    __tablename__ = "marks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    model: Mapped[str] = mapped_column(String(200))
    request_id: Mapped[str] = mapped_column(String(64))
    seed: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # the same picture made again by the same key or account gets the same row, so the same pixels
    fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)


class Throttle(Base):
    """Attempts of one kind by one subject (an account, a client address) in the current window."""

    __tablename__ = "throttles"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger)  # Unix time the current window began
    count: Mapped[int] = mapped_column(Integer)


def dialect_insert(session: Session, table: type[Base]) -> Any:
    """The database's own INSERT, which knows ``ON CONFLICT`` (SQLite and PostgreSQL)."""
    name = session.get_bind().dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise LimnerError(f"Limner stores its data in SQLite or PostgreSQL, not {name}: set a database URL for one")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        if str(path) != ":memory:":
            # keys' digests, sessions and accounts: readable by the service's user only (SQLite
            # gives its -wal and -shm files the database file's permissions)
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
            path.chmod(0o600)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record):
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Database:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        from limner.store.migrations import upgrade

        upgrade(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        s = self.sessions()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()
