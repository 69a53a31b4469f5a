"""One thread per process runs every model's torch work: loading and generation.

PyTorch's OpenMP (libgomp) gives each thread that starts parallel work its own team of workers,
and once a process holds more OpenMP threads than CPUs, libgomp stops its idle workers from
spin-waiting between parallel regions. A model loaded on one thread and sampled on another (the
server's request threads, the batcher) then pays a wake-up for every small matmul: on the
2-core development machine a 2-row denoiser step took 54 ms instead of 32 ms. Running all of it
on one thread keeps a single team, whatever thread the request came from.

Short work that must not wait for a whole batch of sampling (moderation's text embedding, asked
for while a request is being admitted) is ``urgent``: a running batch runs it between two of its
steps (``between_steps``), still on this thread.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")

THREAD_NAME = "limner-compute"
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_NAME)
_urgent: queue.SimpleQueue[tuple[Callable[[], object], Future]] = queue.SimpleQueue()


def on_compute_thread() -> bool:
    return threading.current_thread().name.startswith(THREAD_NAME)


def run(fn: Callable[..., T], *args: object, urgent: bool = False, **kwargs: object) -> T:
    """``fn(*args, **kwargs)`` on the compute thread (directly when already on it); its
    exceptions reach the caller. ``urgent``: short work, run between the steps of a batch that is
    sampling now instead of after it."""
    if on_compute_thread():
        return fn(*args, **kwargs)
    if not urgent:
        return _executor.submit(fn, *args, **kwargs).result()
    future: Future = Future()
    _urgent.put((functools.partial(fn, *args, **kwargs), future))
    _executor.submit(between_steps)  # when the thread is idle, this runs it
    return future.result()


def between_steps() -> None:
    """Run the urgent work waiting now. Long work on the compute thread (a sampling loop) calls
    this between its steps; elsewhere it does nothing."""
    if not on_compute_thread():
        return
    while True:
        try:
            task, future = _urgent.get_nowait()
        except queue.Empty:
            return
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(task())
            except BaseException as e:
                future.set_exception(e)


def on_compute(fn: Callable[P, T]) -> Callable[P, T]:
    """Make ``fn`` always run on the compute thread (for torch work outside the engine, such as
    the evaluation's instruments, in a process that also generates). ``fn`` must not wait for
    the engine's results: the engine needs the same thread."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return run(functools.partial(fn, *args, **kwargs))

    return wrapper
