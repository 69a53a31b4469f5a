"""Dynamic batching: requests that arrive within a short window and can share a sampling loop
(same model, size, steps, sampler, mode) run as one batch. Higher ``priority`` goes first.

The window is waited only while callers are seen to overlap (the last batch held several
requests, or some queued while it ran): a lone caller's request starts at once, since waiting for
company that never comes cost a lone caller a fifth of its images/s with the six-step sampler.

One worker thread per model gathers its batches; every batch runs on the process's compute
thread (``compute.run``); callers wait on futures.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from limner.engine import compute
from limner.engine.request import GenerationRequest
from limner.errors import Busy, Cancelled


@dataclass(order=True)
class _Job:
    order: tuple[int, int]
    request: GenerationRequest = field(compare=False)
    key: tuple = field(compare=False)
    future: Future = field(compare=False)


class Batcher:
    def __init__(self, backend: Any, window_s: float = 0.02, max_images: int = 8, max_queued_images: int = 256):
        self.backend = backend
        self.window_s = window_s
        self.max_images = max_images
        self.max_queued_images = max_queued_images  # past this many waiting, submit() says Busy
        self._heap: list[_Job] = []
        self._running: list[_Job] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._closed = False
        self._overlapping = False  # did callers overlap around the last batch? (then wait for company)
        self.batches_run = 0
        self.images_run = 0
        self._thread = threading.Thread(target=self._loop, name=f"batcher-{getattr(backend, 'name', '')}", daemon=True)
        self._thread.start()

    def submit(self, request: GenerationRequest) -> Future:
        future: Future = Future()
        key = self.backend.batch_key(request)
        with self._cond:
            if self._closed:
                raise Busy("the engine is shutting down; retry on another server or after the restart", retry_after=10)
            if sum(j.request.n for j in self._heap) + request.n > self.max_queued_images:
                raise Busy(f"{self.max_queued_images} images are already waiting for this model; retry shortly")
            heapq.heappush(self._heap, _Job((-request.priority, next(self._seq)), request, key, future))
            self._cond.notify_all()
        return future

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def pending_images(self) -> int:
        with self._cond:
            return sum(j.request.n for j in self._heap)

    def _take_compatible(self, key: tuple, room: int) -> _Job | None:
        for job in sorted(self._heap):
            if job.key == key and job.request.n <= room:
                self._heap.remove(job)
                heapq.heapify(self._heap)
                return job
        return None

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._heap and not self._closed:
                    self._cond.wait()
                if self._closed and not self._heap:
                    return
                first = heapq.heappop(self._heap)
                window = self.window_s if self._overlapping else 0.0
            batch = [first]
            images = first.request.n
            deadline = time.monotonic() + window
            while images < self.max_images:
                with self._cond:
                    job = self._take_compatible(first.key, self.max_images - images)
                    if job is None:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0 or self._closed:
                            break
                        self._cond.wait(remaining)
                        continue
                batch.append(job)
                images += job.request.n
            self._run(batch)

    def _run(self, batch: list[_Job]) -> None:
        live = [j for j in batch if not j.request.cancel.is_set()]
        for j in batch:
            if j.request.cancel.is_set():
                j.future.set_exception(Cancelled("cancelled before it started"))
        if not live:
            return
        for j in live:
            j.future.set_running_or_notify_cancel()
        with self._cond:
            self._running = live
        try:
            results = compute.run(self.backend.generate, [j.request for j in live])
        except BaseException as e:  # the batch failed as a whole: every caller hears why
            for j in live:
                j.future.set_exception(e)
            return
        finally:
            with self._cond:
                self._running = []
                self._overlapping = len(batch) > 1 or bool(self._heap)
        self.batches_run += 1
        self.images_run += sum(j.request.n for j in live)
        for j, res in zip(live, results, strict=True):
            if isinstance(res, BaseException):
                j.future.set_exception(res)
            else:
                j.future.set_result(res)

    def close(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop taking work; finish what is queued (``wait``, for at most ``timeout`` seconds) or
        fail it visibly. Past the deadline the running batch is cancelled at its next step."""
        with self._cond:
            self._closed = True
            if not wait:
                self._cancel_all()
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            with self._cond:
                self._cancel_all()
            self._thread.join()

    def _cancel_all(self) -> None:
        for job in self._heap:
            job.request.cancel.set()
            job.future.set_exception(Cancelled("the server is shutting down"))
        self._heap.clear()
        for job in self._running:
            job.request.cancel.set()
