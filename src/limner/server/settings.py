"""One Settings object for the service, read from LIMNER_* environment variables."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from limner.engine import Engine

ALIASES = {"models_file": "LIMNER_MODELS", "creator_daily_boosts": "LIMNER_DAILY_BOOSTS"}
PARSERS: dict[str, Callable[[str], object]] = {
    "int": int,
    "float": float,
    "Path": Path,
    "bool": lambda v: v.strip().lower() not in ("0", "false", "no"),
}


@dataclass
class Settings:
    data_dir: Path = Path("limner-data")  # stored images, the SQLite file, the signing secret
    database_url: str | None = None  # default: SQLite file in data_dir; PostgreSQL by URL
    models_file: Path | None = None
    model_aliases: str = "gpt-image-1,gpt-image-1-mini,dall-e-3,dall-e-2"  # names of the default model; "" for none
    secret: str | None = None  # signs file URLs and sessions; default: kept in data_dir/secret
    url_expiry_minutes: int = 60
    file_retention_hours: float = 24.0  # images made for url responses are deleted after this
    moderation_policy: Path | None = None  # TOML; default: the built-in policy
    batch_window_ms: float = 20.0
    max_batch_images: int = 8
    max_upload_bytes: int = 20 * 2**20  # one uploaded image or mask
    max_request_bytes: int = 2**20  # any other request body (JSON, forms)
    max_upload_pixels: int = 4096 * 4096  # one uploaded image or mask, checked before decoding
    max_running_requests: int = 16  # API requests on generation threads (generating or queued in the engine)
    max_waiting_requests: int = 64  # more API requests waiting for such a thread; past that, 503
    metrics_token: str | None = None  # if set, /metrics wants it as a bearer token
    size_policy: str = "strict"  # "resize": a size the model cannot make is made at its own and resized
    public_url: str | None = None  # base of URLs handed out; default: this server's own address
    creator_daily_boosts: int = 15
    creator_daily_jobs: int = 200  # sets of images one account may make per UTC day
    creator_active_jobs: int = 3  # one account's jobs waiting or running at once
    max_queued_jobs: int = 500  # Creator jobs waiting, all accounts; past that, 503
    job_streams_per_account: int = 8  # open progress streams (/jobs/{id}/events) per account
    job_workers: int = 4  # Creator jobs this process runs at once (the engine batches them)
    job_lease_seconds: float = 30.0  # a worker silent this long is dead; its jobs run again
    shutdown_grace_seconds: float = 30.0  # on SIGTERM, running work gets this long, then is cancelled
    signin_failures_per_account: int = 5  # per 15 minutes; then sign-in is refused until the window ends
    signin_failures_per_address: int = 20  # per 15 minutes, from one client address
    signups_per_address: int = 5  # per hour, from one client address
    arena_battles_per_address: int = 600  # battles started per hour from one client address (each is a row)
    arena_unvoted_hours: float = 24.0  # a battle left without a vote is deleted after this (live: its images too)
    cookie_secure: bool = True
    smtp_host: str | None = None  # set to mail password-reset links; else the operator prints them
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str | None = None  # default: limner@<smtp_host>
    smtp_starttls: bool = True
    watermark: bool = True  # an invisible watermark on every image (a key can turn it off for itself)
    content_credentials: bool = True  # a signed C2PA manifest in every image file (likewise)
    c2pa_certificate: Path | None = None  # an organisation's chain (PEM, signer first); default: made in data_dir
    c2pa_private_key: Path | None = None  # its private key (PEM); set both or neither
    engine_factory: object = field(default=None, repr=False)  # tests inject a ready Engine

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Every field from ``LIMNER_<FIELD>`` (``LIMNER_MAX_QUEUED_JOBS=100`` …), a few by
        shorter names (``ALIASES``); a value that does not parse is an error naming the variable."""
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name == "engine_factory":
                continue
            name = ALIASES.get(f.name, "LIMNER_" + f.name.upper())
            raw = os.environ.get(name)
            if raw is None or raw == "":
                continue
            kind = str(f.type).replace(" | None", "")
            try:
                values[f.name] = PARSERS.get(kind, str)(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a valid {kind}") from None
        s = cls(**values)  # type: ignore[arg-type]
        for k, v in overrides.items():
            if v is not None:
                setattr(s, k, v)
        return s

    def make_engine(self) -> Engine:
        """The engine these settings serve (the injected one in tests), reaching configured models
        only: over HTTP or MCP a caller can neither load nor probe a folder of the server's disk."""
        from limner.engine import Engine

        engine = (
            self.engine_factory()  # type: ignore[operator]
            if callable(self.engine_factory)
            else Engine(
                models_file=self.models_file, window_ms=self.batch_window_ms, max_batch_images=self.max_batch_images
            )
        )
        engine.allow_paths = False
        return engine

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'limner.db').resolve()}"

    def resolved_secret(self) -> str:
        if self.secret:
            return self.secret
        path = self.data_dir / "secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        self.secret = path.read_text().strip()
        return self.secret
