import threading
import time

import pytest

from limner.engine.batching import Batcher
from limner.engine.request import GenerationRequest
from limner.errors import Busy, Cancelled


class FakeBackend:
    """Records each batch it is given; blocks while ``gate`` is closed so work can queue up.
    Requests are compatible when their sizes match; "explode" fails its whole batch and
    "refused" fails only itself."""

    name = "fake"

    def __init__(self):
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.busy = threading.Event()

    def batch_key(self, req: GenerationRequest) -> tuple:
        return (req.size,)

    def generate(self, requests):
        self.busy.set()
        assert self.gate.wait(10)
        if any(r.prompt == "explode" for r in requests):
            raise RuntimeError("out of memory")
        self.batches.append([r.prompt for r in requests])
        return [Cancelled("cancelled by the caller") if r.prompt == "refused" else [r.prompt] * r.n for r in requests]


@pytest.fixture
def backend():
    return FakeBackend()


@pytest.fixture
def make(backend):
    made = []

    def make(window_s: float = 0.05, max_images: int = 8) -> Batcher:
        made.append(Batcher(backend, window_s, max_images))
        return made[-1]

    yield make
    backend.gate.set()
    for b in made:
        b.close()


def req(prompt: str, size: str = "64x64", **kw) -> GenerationRequest:
    return GenerationRequest(prompt, size=size, **kw)


def hold(batcher: Batcher, backend: FakeBackend):
    """Occupy the worker with a first request, so what is submitted next waits in the queue."""
    backend.gate.clear()
    backend.busy.clear()
    first = batcher.submit(req("blocker", size="8x8"))
    assert backend.busy.wait(10)
    return first


def test_compatible_requests_share_a_batch_and_incompatible_ones_do_not(make, backend):
    batcher = make()
    first = hold(batcher, backend)
    futures = [
        batcher.submit(req(p, size)) for p, size in [("a", "64x64"), ("b", "32x32"), ("c", "64x64"), ("d", "64x64")]
    ]
    backend.gate.set()
    assert first.result(10) == ["blocker"]
    assert [f.result(10) for f in futures] == [["a"], ["b"], ["c"], ["d"]]
    assert backend.batches == [["blocker"], ["a", "c", "d"], ["b"]]
    assert (batcher.batches_run, batcher.images_run) == (3, 5)


def test_while_callers_overlap_a_request_arriving_within_the_window_joins_the_batch(make, backend):
    batcher = make(window_s=10.0, max_images=2)  # a full batch starts at once
    started = time.monotonic()
    first = hold(batcher, backend)
    a = batcher.submit(req("a"))  # queued while the blocker runs: callers overlap
    backend.gate.set()
    assert first.result(10) == ["blocker"]
    time.sleep(0.05)
    b = batcher.submit(req("b"))
    assert (a.result(10), b.result(10)) == (["a"], ["b"])
    assert backend.batches == [["blocker"], ["a", "b"]]
    assert time.monotonic() - started < 5


def test_a_lone_caller_does_not_wait_for_the_window(make, backend):
    batcher = make(window_s=10.0)
    for prompt in ("a", "b", "c"):  # one after another, as a single caller sends them
        started = time.monotonic()
        assert batcher.submit(req(prompt)).result(10) == [prompt]
        assert time.monotonic() - started < 2
    assert backend.batches == [["a"], ["b"], ["c"]]


def test_higher_priority_runs_first_then_arrival_order(make, backend):
    batcher = make()
    hold(batcher, backend)
    futures = [
        batcher.submit(req(p, size, priority=prio))
        for p, size, prio in [
            ("low", "16x16", 0),
            ("high", "24x24", 5),
            ("mid", "32x32", 2),
            ("mid-later", "40x40", 2),
        ]
    ]
    backend.gate.set()
    for f in futures:
        f.result(10)
    assert backend.batches == [["blocker"], ["high"], ["mid"], ["mid-later"], ["low"]]


def test_a_batch_never_holds_more_than_max_images(make, backend):
    batcher = make(max_images=4)
    hold(batcher, backend)
    futures = [batcher.submit(req(p, n=n)) for p, n in [("a", 3), ("b", 3), ("c", 1)]]
    backend.gate.set()
    assert [f.result(10) for f in futures] == [["a"] * 3, ["b"] * 3, ["c"]]
    assert backend.batches == [["blocker"], ["a", "c"], ["b"]]


def test_a_request_cancelled_while_queued_never_runs(make, backend):
    batcher = make()
    hold(batcher, backend)
    gone, kept = req("gone"), req("kept")
    futures = [batcher.submit(gone), batcher.submit(kept)]
    gone.cancel.set()
    backend.gate.set()
    with pytest.raises(Cancelled, match="before it started"):
        futures[0].result(10)
    assert futures[1].result(10) == ["kept"]
    assert backend.batches == [["blocker"], ["kept"]]


def test_a_failed_batch_fails_each_of_its_callers_and_the_worker_goes_on(make, backend):
    batcher = make()
    hold(batcher, backend)
    futures = [batcher.submit(req("explode")), batcher.submit(req("innocent"))]
    backend.gate.set()
    for f in futures:
        with pytest.raises(RuntimeError, match="out of memory"):
            f.result(10)
    assert batcher.submit(req("next")).result(10) == ["next"]
    assert backend.batches == [["blocker"], ["next"]]
    assert batcher.batches_run == 2  # a failed batch does not count


def test_one_failed_request_does_not_fail_its_batch(make, backend):
    batcher = make()
    hold(batcher, backend)
    refused, fine = batcher.submit(req("refused")), batcher.submit(req("fine"))
    backend.gate.set()
    with pytest.raises(Cancelled):
        refused.result(10)
    assert fine.result(10) == ["fine"]


def test_close_without_waiting_fails_queued_work_visibly(make, backend):
    batcher = make()
    first = hold(batcher, backend)
    queued = batcher.submit(req("queued"))
    closer = threading.Thread(target=batcher.close, kwargs={"wait": False})
    closer.start()
    with pytest.raises(Cancelled, match="shutting down"):
        queued.result(10)
    backend.gate.set()
    closer.join(10)
    assert first.result(10) == ["blocker"]
    with pytest.raises(Busy, match="shutting down"):  # a 503 over HTTP: retry elsewhere or later
        batcher.submit(req("late"))


def test_close_waits_for_queued_work(make, backend):
    batcher = make()
    hold(batcher, backend)
    queued = batcher.submit(req("queued"))
    backend.gate.set()
    batcher.close(wait=True)
    assert queued.result(0) == ["queued"]


@pytest.mark.hostile
def test_the_queue_is_bounded(backend):
    """Past ``max_queued_images`` waiting, a caller hears Busy (a 503 with Retry-After) at once
    instead of joining a queue without end."""
    batcher = Batcher(backend, 0.01, 8, max_queued_images=6)
    try:
        hold(batcher, backend)
        waiting = [batcher.submit(req(f"w{i}", n=2)) for i in range(3)]  # six images wait
        with pytest.raises(Busy) as e:
            batcher.submit(req("one too many"))
        assert e.value.status == 503 and e.value.retry_after > 0
        backend.gate.set()
        assert all(w.result(10) for w in waiting)
    finally:
        backend.gate.set()
        batcher.close()


@pytest.mark.hostile
def test_close_has_a_deadline_then_cancels_what_is_left(backend):
    """A graceful stop waits at most ``timeout``: then queued work fails visibly and the running
    batch is asked to stop at its next step (a stop with queued work hung until killed)."""
    batcher = Batcher(backend, 0.01, 1)
    first = hold(batcher, backend)  # the running batch waits, as a long sampling loop would
    queued = batcher.submit(req("queued"))
    started = time.monotonic()
    closer = threading.Thread(target=batcher.close, kwargs={"wait": True, "timeout": 0.3})
    closer.start()
    with pytest.raises(Cancelled, match="shutting down"):
        queued.result(10)
    assert time.monotonic() - started < 5
    assert first.running()  # told to stop: the backend checks its cancel event between steps
    backend.gate.set()
    closer.join(10)
    assert not closer.is_alive() and first.result(10) == ["blocker"]
