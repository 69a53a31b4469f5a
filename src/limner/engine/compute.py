"""One thread per process runs every model's torch work: loading and generation.

PyTorch's OpenMP (libgomp) gives each thread that starts parallel work its own team of workers,
and once a process holds more OpenMP threads than CPUs, libgomp stops its idle workers from
spin-waiting between parallel regions. A model loaded on one thread and sampled on another (the
server's request threads, the batcher) then pays a wake-up for every small matmul: on the
2-core development machine a 2-row denoiser step took 54 ms instead of 32 ms. Running all of it
on one thread keeps a single team, whatever thread the request came from.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")

THREAD_NAME = "limner-compute"
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_NAME)


def on_compute_thread() -> bool:
    return threading.current_thread().name.startswith(THREAD_NAME)


def run(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """``fn(*args, **kwargs)`` on the compute thread (directly when already on it); its
    exceptions reach the caller."""
    if on_compute_thread():
        return fn(*args, **kwargs)
    return _executor.submit(fn, *args, **kwargs).result()


def on_compute(fn: Callable[P, T]) -> Callable[P, T]:
    """Make ``fn`` always run on the compute thread (for torch work outside the engine, such as
    the evaluation's instruments, in a process that also generates). ``fn`` must not wait for
    the engine's results: the engine needs the same thread."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return run(fn, *args, **kwargs)

    return wrapper
