"""Generation runs off the event loop, on threads of its own: ``running`` at a time (a limiter
apart from the one FastAPI's other routes use, so ``/healthz`` and the pages keep their threads),
up to ``waiting`` more queued for a thread without holding one, a 503 with ``Retry-After`` past
that, and cancellation when the caller hangs up."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

import anyio
from fastapi import Request

from limner.errors import Busy

T = TypeVar("T")


class Slots:
    """A bounded queue in front of a bounded set of generation threads. Used from the event loop
    only, so its count needs no lock."""

    def __init__(self, running: int, waiting: int):
        self.threads = anyio.CapacityLimiter(running)
        self.capacity = running + waiting
        self.taken = 0

    def admit(self) -> None:
        if self.taken >= self.capacity:
            raise Busy("The server is busy with other requests; retry shortly.", retry_after=5)

    async def run(self, fn: Callable[[], T]) -> T:
        self.admit()
        self.taken += 1
        try:
            return await anyio.to_thread.run_sync(fn, limiter=self.threads)
        finally:
            self.taken -= 1


def admit(request: Request) -> None:
    """Refuse at once, rather than queue without bound."""
    request.app.state.slots.admit()


async def run(request: Request, fn: Callable[[], T], cancel: threading.Event, watch: bool = True) -> T:
    """``fn()`` on a generation thread; with ``watch``, ``cancel`` is set if the caller disconnects
    meanwhile (a streaming response watches for that itself)."""
    watcher = asyncio.create_task(_watch_disconnect(request, cancel)) if watch else None
    try:
        return await request.app.state.slots.run(fn)
    finally:
        if watcher is not None:
            watcher.cancel()


async def _watch_disconnect(request: Request, cancel: threading.Event, every: float = 0.25) -> None:
    while not cancel.is_set():
        if await request.is_disconnected():
            cancel.set()
            return
        await asyncio.sleep(every)
