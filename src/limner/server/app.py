"""The service: an app factory. The engine and the database are opened in the lifespan."""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware

from limner.arena.battles import Arena
from limner.errors import Unauthorized
from limner.moderation import Policy
from limner.provenance import Provenance
from limner.server import errors
from limner.server.body_limit import BodyLimit
from limner.server.janitor import Janitor
from limner.server.metrics import Metrics
from limner.server.runner import JobRunner
from limner.server.settings import Settings
from limner.server.work import Slots
from limner.store import quota
from limner.store.db import Database
from limner.store.files import FileStore
from limner.version import __version__

log = logging.getLogger("limner.server")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_SIGNATURE = re.compile(r"(signature=)[^&\s]+")


class RedactSignatures(logging.Filter):
    """A signed file link is a credential for as long as it lives: the access log keeps the path
    and drops the signature."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_SIGNATURE.sub(r"\1[redacted]", a) if isinstance(a, str) else a for a in record.args)
        return True


def _redact_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSignatures) for f in access.filters):
        access.addFilter(RedactSignatures())


class RequestContext(BaseHTTPMiddleware):
    """Gives every request an id (the caller's ``x-request-id`` if sane) and the pages their
    security headers."""

    async def dispatch(self, request: Request, call_next):
        started = time.perf_counter()
        given = request.headers.get("x-request-id", "")
        request.state.request_id = given if _REQUEST_ID.match(given) else "req_" + secrets.token_hex(12)
        try:
            response = await call_next(request)
        except Exception:  # answered here, inside the middleware, so it keeps its request id
            log.exception("unexpected error on %s %s (%s)", request.method, request.url.path, request.state.request_id)
            response = errors.envelope(500, "The server had an error while processing your request.", "server_error")
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None:
            route = request.scope.get("route")
            metrics.observe(
                getattr(route, "path", "unmatched"),
                request.method,
                response.status_code,
                time.perf_counter() - started,
                getattr(request.state, "error_code", None),
            )
        key_id = getattr(request.state, "api_key_id", None)
        if key_id is not None:  # OpenAI's x-ratelimit-* headers, after the request's own spending
            response.headers.update(await run_in_threadpool(_rate_limit_headers, request.app, key_id))
        response.headers["x-request-id"] = request.state.request_id
        if not request.url.path.startswith(("/v1", "/docs", "/redoc", "/openapi.json")):
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data: blob:; "
                "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
            )
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response


def _rate_limit_headers(app: FastAPI, key_id: int) -> dict[str, str]:
    with app.state.db.session() as s:
        return quota.headers(s, key_id)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:

        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = Database(settings.resolved_database_url())
        db.migrate()
        engine = settings.make_engine()
        if engine.default is not None:
            names = [a.strip() for a in settings.model_aliases.split(",") if a.strip()]
            engine.aliases = {a: engine.default for a in names if a not in engine.specs} | engine.aliases
        for state in engine.states():  # each configured model looked at, none loaded yet
            if state.ready:
                log.info("model %s (%s): %s", state.name, state.backend, state.detail)
            else:
                log.warning("model %s (%s) will not load: %s", state.name, state.backend, state.detail)
        app.state.db = db
        app.state.engine = engine
        app.state.slots = Slots(settings.max_running_requests, settings.max_waiting_requests)
        app.state.metrics = Metrics(app.state)
        app.state.tasks = set()  # streams' generation tasks, kept referenced until they end
        app.state.policy = Policy.load(settings.moderation_policy)
        app.state.files = FileStore(settings.data_dir / "files", settings.resolved_secret())
        app.state.provenance = Provenance.from_settings(settings)
        app.state.jobs = JobRunner(app.state, concurrency=settings.job_workers, lease_s=settings.job_lease_seconds)
        app.state.job_streams = {}  # open progress streams per account (touched on the event loop only)
        app.state.arena = Arena(
            db, engine, app.state.files, app.state.policy, settings.resolved_secret(), mark=app.state.provenance.mark
        )
        janitor = Janitor(app.state)  # last: its first round runs at once, over everything above
        log.info("limner %s serving models %s", __version__, [m["name"] for m in engine.models()])
        try:
            async with mcp.serving(mcp_server, settings):  # /mcp's sessions (set up per start)
                yield
        finally:
            # running jobs get the grace period, then go back in the queue for the next start;
            # API requests still waiting in the engine are cancelled (their quota given back)
            janitor.close()
            app.state.jobs.close(settings.shutdown_grace_seconds)
            engine.close(wait=True, timeout=settings.shutdown_grace_seconds)
            db.engine.dispose()

    app = FastAPI(
        title="Limner",
        version=__version__,
        lifespan=lifespan,
        description="Self-hosted text-to-image with an OpenAI-compatible Images API.",
        docs_url=None,  # served below from local files: the default pages load scripts from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    _redact_access_log()
    errors.install(app)
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(RequestContext)  # outermost: every answer, a 413 too, carries the request id

    from fastapi.staticfiles import StaticFiles

    from limner.server import arena, mcp
    from limner.server.api import files, images, models, verify
    from limner.server.web import accounts, create, history, jobs, reset
    from limner.server.web import images as image_pages

    for module in (images, verify, models, files, accounts, reset, create, jobs, history, image_pages, arena):
        app.include_router(module.router)
    mcp_server = mcp.mount(app)  # the same tools as `limner mcp`, over streamable HTTP with an API key
    app.mount("/static", StaticFiles(directory=str(Path(__file__).with_name("static"))), name="static")
    _api_docs(app)

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        token = request.app.state.settings.metrics_token
        if token and not secrets.compare_digest(request.headers.get("authorization", ""), f"Bearer {token}"):
            raise Unauthorized("Send the metrics token as 'Authorization: Bearer TOKEN'.", code="invalid_api_key")
        return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["service"], summary="Liveness, and each configured model's state")
    async def healthz(request: Request) -> dict:
        """``status`` is "ok" when every configured model passes its check, else "degraded" (the
        service still answers; the log at start-up says what is wrong — never this public page)."""
        engine = request.app.state.engine
        states = await run_in_threadpool(engine.states)
        return {
            "status": "ok" if all(st.ready for st in states) else "degraded",
            "version": __version__,
            "models": [st.name for st in states],
            "model_states": [
                {"name": st.name, "backend": st.backend, "ready": st.ready, "loaded": engine.is_loaded(st.name)}
                for st in states
            ],
        }

    return app


def _api_docs(app: FastAPI) -> None:
    """Swagger UI at /docs and ReDoc at /redoc, their scripts served by this server (from the
    ``fastapi-offline`` wheel): no third-party origin runs code on the service's pages, and the
    docs work without internet."""
    import fastapi_offline
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    assets = Path(fastapi_offline.__file__).with_name("static")
    app.mount("/docs/assets", StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Limner API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="Limner API",
            redoc_js_url="/docs/assets/redoc.standalone.js",
            redoc_favicon_url="/docs/assets/favicon.png",
            with_google_fonts=False,
        )
