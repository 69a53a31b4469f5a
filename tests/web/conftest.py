"""Fixtures for the Image Creator: a tiny untrained model, the app in-process (``TestClient``), the
real server on a free port in a background thread, and Debian's Chromium driven by Playwright.

Browser tests are marked ``browser`` and skip when /usr/bin/chromium is missing
(``scripts/setup --dev`` installs it). Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from web_helpers import STEPS, Account, LiveServer, sign_up

from limner.engine import Engine, GenerationRequest, Progress
from limner.engine.builtin import LimnerBackend
from limner.engine.registry import BACKENDS, ModelSpec
from limner.server.app import create_app
from limner.server.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}


class SlowSteps(LimnerBackend):
    """The built-in backend, pausing ``step_delay`` seconds after each sampling step (the tiny
    model finishes a job in about a second, too quickly for a test to watch it run), and keeping
    the requests it was given, masks included, for tests to look at."""

    step_delay = 0.0

    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)
        self.seen: list[GenerationRequest] = []

    def generate(self, requests: list[GenerationRequest]) -> list:
        self.seen.extend(requests)
        for req in requests:
            if req.on_progress is not None:
                req.on_progress = self._slowed(req.on_progress)
        return super().generate(requests)

    def _slowed(self, inner: Callable[[Progress], None]) -> Callable[[Progress], None]:
        def on_progress(p: Progress) -> None:
            time.sleep(self.step_delay)
            inner(p)

        return on_progress


def tiny_settings(data_dir: Path, model: Path, **overrides: object) -> Settings:
    """Settings serving only the tiny model (as ``tiny``, through ``SlowSteps``)."""

    def engine() -> Engine:
        return Engine(
            specs=[ModelSpec("tiny", "limner-slow", model, defaults={"num_inference_steps": STEPS})], window_ms=5
        )

    overrides.setdefault("signups_per_address", 10_000)  # every test's accounts come from one address
    return Settings(data_dir=data_dir, secret="test-secret", engine_factory=engine, **overrides)


@pytest.fixture(scope="session", autouse=True)
def _slow_backend() -> Iterator[None]:
    """Registered the way any addition registers a backend."""
    with pytest.MonkeyPatch.context() as m:
        m.setitem(BACKENDS, "limner-slow", SlowSteps)
        yield


# -- in-process ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def make_settings(tiny_model: Path) -> Callable[..., Settings]:
    """``make_settings(data_dir, **overrides)`` → settings serving the tiny model."""
    return lambda data_dir, **overrides: tiny_settings(data_dir, tiny_model, **overrides)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[FastAPI]:
    """One app per test module, its lifespan running (engine and database open); every test uses
    accounts of its own. Secure cookies, as in production."""
    app = create_app(tiny_settings(tmp_path_factory.mktemp("data"), tiny_model))
    with TestClient(app, base_url="https://testserver"):
        yield app


@pytest.fixture
def account(app: FastAPI) -> Callable[[], Account]:
    """``account()`` → a new signed-up account with a client of its own (its own cookie jar)."""
    return lambda: sign_up(TestClient(app, base_url="https://testserver", follow_redirects=False))


# -- the real server and a browser -----------------------------------------------------------------


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[LiveServer]:
    """``limner serve`` in a background thread on a free port of 127.0.0.1.

    Cookies stay ``Secure`` (the production default): Chromium counts http://127.0.0.1 and
    http://localhost as secure contexts, so it keeps and sends Secure cookies there."""
    app = create_app(tiny_settings(tmp_path_factory.mktemp("live"), tiny_model))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=2)
    )
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian's Chromium at /usr/bin/chromium (scripts/setup --dev installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server: LiveServer) -> Iterator[object]:
    """A fresh browser profile (no cookies) on the live server. Uncaught script errors and
    Content-Security-Policy violations fail the test."""
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    context.set_default_timeout(20_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    page.on(
        "console",
        lambda m: problems.append(m.text) if m.type == "error" and "Content Security Policy" in m.text else None,
    )
    yield page
    context.close()
    assert not problems, problems


@pytest.fixture
def slow_steps(live_server: LiveServer) -> Iterator[None]:
    """About 3 s per job instead of one, so a test can see it run."""
    backend = live_server.backend()
    backend.step_delay = 0.1
    yield
    backend.step_delay = 0.0
