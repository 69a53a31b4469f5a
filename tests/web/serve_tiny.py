"""``python serve_tiny.py DATA_DIR MODEL_DIR PORT [STEP_DELAY]``: the real server in a process of
its own, serving a tiny model that sleeps ``STEP_DELAY`` seconds per sampling step — for the tests
that kill a server mid-job. Database and files live in DATA_DIR (or LIMNER_DATABASE_URL)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import uvicorn

from limner.engine import Engine
from limner.engine.builtin import LimnerBackend
from limner.engine.registry import BACKENDS, ModelSpec
from limner.server.app import create_app
from limner.server.settings import Settings


class Slow(LimnerBackend):
    delay = 0.0

    def generate(self, requests):
        for req in requests:
            inner = req.on_progress
            if inner is not None:
                req.on_progress = lambda p, inner=inner: (time.sleep(self.delay), inner(p))[1]
        return super().generate(requests)


def main() -> None:
    data, model, port = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    Slow.delay = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    BACKENDS["limner-slow"] = Slow
    settings = Settings(
        data_dir=data,
        database_url=os.environ.get("LIMNER_DATABASE_URL"),
        secret="test-secret",
        cookie_secure=False,
        signups_per_address=10_000,
        job_lease_seconds=1.5,
        shutdown_grace_seconds=1.0,
        engine_factory=lambda: Engine(
            specs=[ModelSpec("tiny", "limner-slow", model, defaults={"num_inference_steps": 20})], window_ms=5
        ),
    )
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2)


if __name__ == "__main__":
    main()
