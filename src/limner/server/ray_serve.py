"""Limner on Ray Serve: the whole service — Images API, Image Creator, arena — as the ingress
deployment, and one deployment per model whose replicas batch generation with ``@serve.batch``
across every ingress replica.

    serve run limner.server.ray_serve:app config=ray.toml      # what Ray users expect
    limner serve --ray --ray-config ray.toml                    # the same, from Limner's CLI

The ingress replicas run the same app as ``limner serve`` (its lifespan opens the database, the
job runner, the arena …), with an engine whose every model is a ``RayBackend``: a stand-in that
validates through the model's deployment and streams each request's progress and images back from
it. Ray places, restarts and scales the replicas; the database (PostgreSQL across nodes) and the
data folder (a shared mount) are what the replicas share.

``ray.toml`` (all optional)::

    [ingress]                      # the service's replicas
    num_replicas = 2
    ray_actor_options = { num_cpus = 0.5 }

    [models.limner-1]              # a model's replicas (every configured model gets a deployment)
    num_replicas = 1               # or autoscaling_config = { min_replicas = 1, max_replicas = 4 }
    ray_actor_options = { num_cpus = 2 }   # { num_gpus = 1 } on a GPU node
    max_batch_images = 8           # images per @serve.batch call
    batch_wait_ms = 20
"""

from __future__ import annotations

import asyncio
import os
import threading
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ray import serve as _serve
from ray.serve.handle import DeploymentHandle

from limner.engine import GenerationRequest, Progress, compute
from limner.engine.registry import ModelSpec, backend_factory, register_backend
from limner.engine.request import ModelInfo
from limner.errors import Cancelled, LimnerError

serve: Any = _serve  # Ray's decorators are typed for simpler uses than a batched generator method
APP = "limner"
MODEL_OPTIONS = ("num_replicas", "autoscaling_config", "ray_actor_options", "max_ongoing_requests")


@dataclass
class RemoteJob:
    """A GenerationRequest as plain data, to cross to a model replica (callbacks and events stay
    behind: progress comes back on the stream, cancelling closes it)."""

    prompt: str
    negative_prompt: str
    n: int
    size: str | None
    seed: int | None
    num_inference_steps: int | None
    steps_scale: float
    guidance_scale: float | None
    model: str | None
    sampler: str | None
    image: Any
    mask: Any
    strength: float
    priority: int
    previews: bool
    typography: str

    @classmethod
    def of(cls, req: GenerationRequest) -> RemoteJob:
        req.seeds()  # fixed here, so the image does not depend on which replica draws it
        return cls(**{f.name: getattr(req, f.name) for f in fields(cls)})

    def request(self) -> GenerationRequest:
        return GenerationRequest(**{f.name: getattr(self, f.name) for f in fields(self)})


def _error(e: BaseException) -> dict:
    """An error as data: its class (one of limner.errors), message, param and code."""
    if not isinstance(e, LimnerError):
        e = LimnerError(f"the model replica failed ({type(e).__name__})")
    return {"cls": type(e).__name__, "message": e.message, "param": e.param, "code": e.code}


def _raise(error: dict) -> None:
    import limner.errors as errors

    cls = getattr(errors, error["cls"], LimnerError)
    if not (isinstance(cls, type) and issubclass(cls, LimnerError)):
        cls = LimnerError
    try:
        e = cls(error["message"], param=error["param"], code=error["code"])
    except TypeError:  # classes with arguments of their own (ModerationBlocked, Busy …)
        e = LimnerError(error["message"], param=error["param"], code=error["code"])
    raise e


class ModelServer:
    """One model's replica: loads the backend once, and batches generation across callers."""

    def __init__(self, spec: dict, max_batch_images: int = 8, batch_wait_ms: float = 20.0):
        factory = backend_factory(spec["backend"])
        self.backend = compute.run(
            factory, spec["name"], Path(spec["path"]), defaults=spec["defaults"], **spec["options"]
        )
        batcher: Any = self.generate
        batcher.set_max_batch_size(max_batch_images)
        batcher.set_batch_wait_timeout_s(batch_wait_ms / 1000)

    def info(self) -> dict:
        return vars(self.backend.info())

    def resolve(self, job: RemoteJob) -> dict | None:
        """None if the model can do what ``job`` asks, else the error as data."""
        try:
            compute.run(self.backend.resolve, job.request(), urgent=True)
            return None
        except LimnerError as e:
            return _error(e)

    async def stream(self, job: RemoteJob) -> AsyncIterator[tuple | None]:
        """One caller's events (what ``RayBackend`` reads); the batching happens behind it."""
        async for event in self.generate(job):
            yield event

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02, batch_size_fn=lambda jobs: sum(j.n for j in jobs))
    async def generate(self, jobs: list[RemoteJob]) -> AsyncIterator[list]:
        """Each caller's stream: ("progress", step, total, previews) events, then ("done", images)
        or ("error", error); None where a caller has nothing new this round. Compatible requests
        share one sampling loop, as in the single-process engine."""
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()
        latest: list[tuple | None] = [None] * len(jobs)
        final: list[tuple | None] = [None] * len(jobs)

        def post(i: int, event: tuple, last: bool = False) -> None:
            def put() -> None:
                if last:
                    final[i] = event
                else:
                    latest[i] = event
                changed.set()

            loop.call_soon_threadsafe(put)

        requests: list[GenerationRequest] = []
        groups: dict[tuple, list[int]] = {}
        for i, job in enumerate(jobs):
            req = job.request()
            req.on_progress = lambda p, i=i: post(i, ("progress", p.step, p.total, p.previews))
            requests.append(req)
            try:
                groups.setdefault(self.backend.batch_key(req), []).append(i)
            except LimnerError as e:
                post(i, ("error", _error(e)), last=True)

        def run() -> None:
            for members in groups.values():
                try:
                    results = compute.run(self.backend.generate, [requests[i] for i in members])
                except BaseException as e:
                    results = [e] * len(members)
                for i, r in zip(members, results, strict=True):
                    post(i, ("error", _error(r)) if isinstance(r, BaseException) else ("done", r), last=True)

        worker = asyncio.ensure_future(asyncio.to_thread(run))
        ended = [False] * len(jobs)
        while not all(ended):
            await changed.wait()
            changed.clear()
            out: list = []
            for i in range(len(jobs)):
                if ended[i]:
                    out.append(StopIteration)
                elif final[i] is not None and latest[i] is None:
                    out.append(final[i])
                    ended[i] = True
                else:
                    out.append(latest[i])
                    latest[i] = None
                    if final[i] is not None:
                        changed.set()  # the final event goes out next round
            yield out
        await worker


class RayBackend:
    """The ingress side of a model deployment: the engine's backend interface, each call a
    round trip to the model's replicas (which batch; this side does not)."""

    kind = "ray"
    remote = True  # the engine calls generate() from the caller's thread, one request at a time

    def __init__(self, name: str, path: Path, deployment: str, app_name: str = APP, **_: object):
        self.name = name
        self.handle: DeploymentHandle = serve.get_deployment_handle(deployment, app_name=app_name)
        self._info: ModelInfo | None = None
        self._lock = threading.Lock()

    def info(self) -> ModelInfo:
        with self._lock:
            if self._info is None:
                self._info = ModelInfo(**self.handle.info.remote().result())
            return self._info

    def resolve(self, req: GenerationRequest) -> dict:
        error = self.handle.resolve.remote(RemoteJob.of(req)).result()
        if error is not None:
            _raise(error)
        return {}  # the replica resolved it; this side needs nothing of it

    def batch_key(self, req: GenerationRequest) -> tuple:
        return ()

    def generate(self, requests: list[GenerationRequest]) -> list:
        return [self._one(req) for req in requests]

    def _one(self, req: GenerationRequest) -> Any:
        stream: Any = self.handle.options(stream=True).stream.remote(RemoteJob.of(req))
        try:
            for event in stream:
                if req.cancel.is_set():
                    stream.cancel()
                    return Cancelled("cancelled by the caller")
                if event is None:
                    continue
                if event[0] == "progress":
                    if req.on_progress is not None:
                        req.on_progress(Progress(event[1], event[2], event[3]))
                elif event[0] == "done":
                    return event[1]
                else:
                    try:
                        _raise(event[1])
                    except LimnerError as e:
                        return e
        except LimnerError as e:
            return e
        return LimnerError("the model replica ended the stream without images")


register_backend("ray", RayBackend)


# -- the application -----------------------------------------------------------------------------


def _load_config(path: str | None) -> dict:
    if not path:
        return {}
    try:
        return tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SystemExit(f"cannot read the Ray config {path}: {e}") from e


def _runtime_env() -> dict:
    """Replicas see the LIMNER_* settings of whoever started the application."""
    return {"env_vars": {k: v for k, v in os.environ.items() if k.startswith("LIMNER_")}}


def _build_service() -> Any:
    """The FastAPI app of an ingress replica: the usual service, its models on Ray."""
    from limner.engine import Engine
    from limner.server.app import create_app
    from limner.server.settings import Settings

    settings = Settings.from_env()
    names = os.environ["LIMNER_RAY_MODELS"].split(",")
    default = os.environ.get("LIMNER_RAY_DEFAULT") or None

    def engine() -> Engine:
        specs = [ModelSpec(n, "ray", Path("."), {"deployment": f"model-{n}"}) for n in names]
        return Engine(specs=specs, default=default)

    settings.engine_factory = engine
    return create_app(settings)


class Service:
    """The ingress deployment. Its models are bound into the application (so Serve deploys them);
    the FastAPI app reaches them by deployment name."""

    def __init__(self, **models: DeploymentHandle):
        self.models = models


def app(args: dict[str, str]) -> Any:
    """The application builder: ``serve run limner.server.ray_serve:app config=ray.toml``."""
    from limner.engine import Engine
    from limner.server.settings import Settings

    cfg = _load_config(args.get("config"))
    settings = Settings.from_env()
    local = Engine(models_file=settings.models_file)  # names the models; loads none
    if not local.specs:
        raise SystemExit("no model to serve: ship weights in weights/ or name them in LIMNER_MODELS")
    env = _runtime_env()
    env["env_vars"].update(LIMNER_RAY_MODELS=",".join(local.specs), LIMNER_RAY_DEFAULT=local.default or "")
    bound = {}
    for name, spec in local.specs.items():
        options = cfg.get("models", {}).get(name, {})
        unknown = set(options) - {*MODEL_OPTIONS, "max_batch_images", "batch_wait_ms"}
        if unknown:
            raise SystemExit(f"ray config: models.{name} has unknown settings {sorted(unknown)}")
        deployment = serve.deployment(ModelServer).options(
            name=f"model-{name}",
            ray_actor_options={"runtime_env": env, **options.get("ray_actor_options", {})},
            **{k: v for k, v in options.items() if k in MODEL_OPTIONS and k != "ray_actor_options"},
        )
        spec_data = {
            "name": name,
            "backend": spec.backend,
            "path": str(spec.path),
            "options": spec.options,
            "defaults": spec.defaults,
        }
        bound[name.replace("-", "_").replace(".", "_")] = deployment.bind(
            spec_data, options.get("max_batch_images", 8), options.get("batch_wait_ms", 20.0)
        )
    ingress_options = cfg.get("ingress", {})
    service = serve.deployment(serve.ingress(_build_service)(Service)).options(
        name="service",
        ray_actor_options={"runtime_env": env, **ingress_options.get("ray_actor_options", {})},
        **{k: v for k, v in ingress_options.items() if k in MODEL_OPTIONS and k != "ray_actor_options"},
    )
    return service.bind(**bound)
