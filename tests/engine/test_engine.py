import io
import json
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image
from tiny_diffusers import DIFFUSERS_NUMPY_WARNING

from limner.engine import Engine, GenerationRequest
from limner.engine.engine import check_request
from limner.engine.metadata import a1111_parameters
from limner.engine.registry import ModelSpec
from limner.errors import Cancelled, InvalidRequest, UnknownModel


@pytest.fixture
def engines():
    made: list[Engine] = []

    def make(*specs: ModelSpec, **kw) -> Engine:
        made.append(Engine(specs=list(specs), **kw))
        return made[-1]

    yield make
    for e in made:
        e.close()


def spy_on(engine: Engine, model: str | None = None) -> list[list[str]]:
    """Record the prompts of every batch the model's backend runs."""
    backend = engine.backend(model)
    calls: list[list[str]] = []
    real = backend.generate

    def generate(requests):
        calls.append([r.prompt for r in requests])
        return real(requests)

    backend.generate = generate
    return calls


def pixels(images) -> list[np.ndarray]:
    return [np.asarray(g.image) for g in images]


def hold(engine: Engine, prompt: str, model: str | None = None) -> tuple[Future, threading.Event]:
    """Start a one-step request that keeps the model busy until the returned event is set."""
    release, running = threading.Event(), threading.Event()

    def wait(_):
        running.set()
        assert release.wait(30)

    future = engine.submit(GenerationRequest(prompt, model=model, num_inference_steps=1, on_progress=wait))
    assert running.wait(30)
    return future, release


def test_bad_requests_fail_before_any_work(engines, limner_spec):
    engine = engines(limner_spec)
    calls = spy_on(engine)
    with pytest.raises(UnknownModel, match="unknown model 'nope'; available: tiny") as err:
        engine.submit(GenerationRequest("a red apple", model="nope"))
    assert (err.value.status, err.value.param, err.value.code) == (404, "model", "model_not_found")
    with pytest.raises(InvalidRequest, match="makes 128x128, 32x32 images") as err:
        engine.submit(GenerationRequest("a red apple", size="64x64"))
    assert err.value.param == "size"
    with pytest.raises(InvalidRequest) as err:
        engine.submit(GenerationRequest("", model="nope"))  # generic checks come first
    assert err.value.param == "prompt"
    with pytest.raises(InvalidRequest) as err:
        check_request(engine, GenerationRequest("a red apple", sampler="ddim"))
    assert err.value.param == "sampler"
    assert calls == []
    assert engine._batchers == {}  # nothing was even queued


def test_an_engine_without_models_says_how_to_get_one(engines):
    with pytest.raises(UnknownModel, match="ship weights in weights/ or pass --models"):
        engines().generate(GenerationRequest("a red apple"))


def test_the_request_is_filled_in_before_it_runs(engines, limner_spec):
    engine = engines(limner_spec, batching=False)
    req = GenerationRequest("a red apple", num_inference_steps=2)
    images = engine.generate(req)
    assert req.model == "tiny" and isinstance(req.seed, int)
    assert images[0].seed == req.seed and images[0].model == "tiny"
    assert images[0].image.size == (128, 128)


@pytest.mark.filterwarnings(DIFFUSERS_NUMPY_WARNING)
@pytest.mark.parametrize("model", ["tiny", "tiny-sd"])
def test_same_request_and_seed_give_identical_pixels_on_every_backend(engines, limner_spec, tiny_sd, model):
    engine = engines(limner_spec, ModelSpec("tiny-sd", "diffusers", tiny_sd, {"device": "cpu"}))
    first = engine.generate(GenerationRequest("a red apple", model=model, n=2, seed=3, num_inference_steps=3))
    again = engine.generate(GenerationRequest("a red apple", model=model, n=2, seed=3, num_inference_steps=3))
    assert [g.seed for g in first] == [3, 4]
    for a, b in zip(pixels(first), pixels(again), strict=True):
        assert np.array_equal(a, b)
    assert not np.array_equal(*pixels(first))
    single = engine.generate(GenerationRequest("a red apple", model=model, seed=4, num_inference_steps=3))
    assert np.array_equal(pixels(single)[0], pixels(first)[1])


@pytest.mark.filterwarnings(DIFFUSERS_NUMPY_WARNING)
@pytest.mark.parametrize("model", ["tiny", "tiny-sd"])
def test_concurrent_callers_are_batched_and_get_what_they_would_get_alone(engines, limner_spec, tiny_sd, model):
    specs = (limner_spec, ModelSpec("tiny-sd", "diffusers", tiny_sd, {"device": "cpu"}))
    batched = engines(*specs, window_ms=2000, max_batch_images=3)
    calls = spy_on(batched, model)
    prompts = [("a red apple", 1), ("a long prompt about a blue car parked in the rain", 2)]

    def request(prompt: str, n: int) -> GenerationRequest:
        return GenerationRequest(prompt, model=model, n=n, seed=10, num_inference_steps=3)

    # callers arrive while the model is busy: they queue, and the batcher, having seen callers
    # overlap, waits its window and runs them as one batch (a blocker decides this, not timing)
    blocker, release = hold(batched, "blocker", model)
    futures = [batched.submit(request(*args)) for args in prompts]
    release.set()
    blocker.result(60)
    together = [f.result(60) for f in futures]
    stats = batched._batchers[model]
    assert (stats.batches_run, stats.images_run) == (2, 4)  # the blocker's, then the callers' together
    assert calls == [["blocker"], [p for p, _ in prompts]]

    sequential = engines(*specs, batching=False)
    for args, got in zip(prompts, together, strict=True):
        alone = sequential.generate(request(*args))
        assert [g.seed for g in got] == [g.seed for g in alone]
        for a, b in zip(pixels(got), pixels(alone), strict=True):
            assert np.array_equal(a, b)


def test_dynamic_batching_keeps_incompatible_requests_apart(engines, limner_spec):
    engine = engines(limner_spec, window_ms=150)
    calls = spy_on(engine)
    first, release = hold(engine, "blocker")  # busy until all four are queued: no timing decides the batches
    futures = [
        engine.submit(GenerationRequest(p, num_inference_steps=steps, size=size, seed=1))
        for p, steps, size in [
            ("four steps", 4, None),
            ("six steps", 6, None),
            ("four steps too", 4, None),
            ("four steps, small", 4, "32x32"),
        ]
    ]
    release.set()
    for f in [first, *futures]:
        f.result(60)
    assert sorted(map(sorted, calls)) == [
        ["blocker"],
        ["four steps", "four steps too"],
        ["four steps, small"],
        ["six steps"],
    ]
    assert engine._batchers["tiny"].batches_run == 4


def test_queued_requests_run_in_priority_order(engines, limner_spec):
    engine = engines(limner_spec, window_ms=1)
    calls = spy_on(engine)
    first, release = hold(engine, "first")
    futures = [
        engine.submit(GenerationRequest(p, num_inference_steps=s, priority=prio))
        for p, s, prio in [("background", 2, 0), ("boosted", 3, 10), ("normal", 4, 1)]
    ]
    release.set()
    for f in [first, *futures]:
        f.result(60)
    assert calls == [["first"], ["boosted"], ["normal"], ["background"]]


def test_progress_events_count_the_steps_and_carry_previews(engines, limner_spec):
    engine = engines(limner_spec)
    events = []
    engine.generate(
        GenerationRequest("a red apple", n=2, num_inference_steps=5, previews=True, on_progress=events.append)
    )
    assert [(e.step, e.total) for e in events] == [(i, 5) for i in range(1, 6)]
    assert all(len(e.previews) == 2 for e in events)
    assert all(isinstance(p, Image.Image) for e in events for p in e.previews)


@pytest.mark.parametrize("batching", [True, False])
def test_cancelling_a_running_request_raises_cancelled(engines, limner_spec, batching):
    engine = engines(limner_spec, batching=batching)
    steps = []
    req = GenerationRequest("a red apple", num_inference_steps=10)

    def on_progress(p):
        steps.append(p.step)
        if p.step == 3:
            req.cancel.set()

    req.on_progress = on_progress
    with pytest.raises(Cancelled, match="cancelled by the caller"):
        engine.generate(req, timeout=60)
    assert steps == [1, 2, 3]


def test_png_metadata_records_how_to_make_the_image_again(engines, limner_spec):
    engine = engines(limner_spec, batching=False)
    req = GenerationRequest(
        "a red apple",
        negative_prompt="blurry",
        seed=7,
        num_inference_steps=3,
        guidance_scale=5.5,
        sampler="heun",
    )
    image = engine.generate(req)[0]
    with Image.open(io.BytesIO(image.png_bytes())) as im:
        text, meta = im.text["parameters"], json.loads(im.text["limner"])
        assert np.array_equal(np.asarray(im.convert("RGB")), np.asarray(image.image))
    assert text == (
        "a red apple\nNegative prompt: blurry\n"
        "Steps: 3, Sampler: Heun, CFG scale: 5.5, Seed: 7, Size: 128x128, "
        f"Model hash: {meta['model_hash']}, Model: tiny, Version: limner 0.1.0"
    )
    assert re.fullmatch(r"[0-9a-f]{10}", meta["model_hash"])  # A1111's short form of the weights' hash
    assert text == a1111_parameters(meta)
    expected = {
        "prompt": "a red apple",
        "negative_prompt": "blurry",
        "model": "tiny",
        "version": "0.1.0",
        "seed": 7,
        "num_inference_steps": 3,
        "guidance_scale": 5.5,
        "sampler": "heun",
        "size": "128x128",
        "mode": "text2img",
        "strength": 1.0,
        "backend": "limner",
    }
    assert {k: meta[k] for k in expected} == expected
    # and the recorded parameters make exactly the same image again
    again = engine.generate(
        GenerationRequest(
            meta["prompt"],
            negative_prompt=meta["negative_prompt"],
            seed=meta["seed"],
            num_inference_steps=meta["num_inference_steps"],
            guidance_scale=meta["guidance_scale"],
            sampler=meta["sampler"],
            size=meta["size"],
        )
    )[0]
    assert np.array_equal(np.asarray(again.image), np.asarray(image.image))


def test_models_lists_specs_and_loaded_details(engines, limner_spec, tiny_sd):
    engine = engines(limner_spec, ModelSpec("tiny-sd", "diffusers", tiny_sd), default="tiny")
    listed = engine.models()
    assert [(m["name"], m["backend"], m["default"]) for m in listed] == [
        ("tiny", "limner", True),
        ("tiny-sd", "diffusers", False),
    ]
    assert "sizes" not in listed[0]  # not loaded yet
    engine.backend("tiny")
    assert engine.models()[0]["sizes"] == ["128x128", "32x32"]


def test_a_model_can_be_named_by_its_path(engines, tiny_limner):
    engine = engines()
    images = engine.generate(GenerationRequest("a red apple", model=str(tiny_limner), num_inference_steps=2))
    assert images[0].model == str(tiny_limner)
    assert [m["backend"] for m in engine.models()] == ["limner"]


@pytest.mark.parametrize("batching", [False, True])
def test_models_load_and_run_on_the_one_compute_thread(engines, limner_spec, batching, monkeypatch):
    # a second OpenMP team in the process slows every sampling step (limner/engine/compute.py)
    from limner.engine import builtin, compute

    seen: list[str] = []
    real_init = builtin.LimnerBackend.__init__

    def init(self, *args, **kwargs):
        seen.append(threading.current_thread().name)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(builtin.LimnerBackend, "__init__", init)
    engine = engines(limner_spec, batching=batching)
    backend = engine.backend()
    real = backend.generate

    def generate(requests):
        seen.append(threading.current_thread().name)
        return real(requests)

    backend.generate = generate
    engine.generate(GenerationRequest("from the main thread", seed=1))
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda i: engine.generate(GenerationRequest(f"from a worker {i}", seed=i)), range(2)))
    assert len(seen) >= 3 and all(name.startswith(compute.THREAD_NAME) for name in seen), seen


def test_urgent_work_runs_between_the_steps_of_a_running_batch():
    """Moderation's embedding, asked for while a batch samples, waits a step — not the batch."""
    import threading
    import time

    from limner.engine import compute

    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def long_batch() -> None:
        started.set()
        for _ in range(200):  # steps of a sampling loop
            compute.between_steps()
            if release.is_set():
                break
            time.sleep(0.01)
        order.append("batch done")

    batch = threading.Thread(target=compute.run, args=(long_batch,))
    batch.start()
    started.wait(5)
    got = compute.run(lambda: order.append("urgent") or compute.on_compute_thread(), urgent=True)
    release.set()
    batch.join(10)
    assert got is True and order == ["urgent", "batch done"]
    assert compute.run(lambda: 7, urgent=True) == 7  # and when the thread is idle
