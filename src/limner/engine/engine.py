"""The engine: every entry point (Python, CLI, HTTP, web app, arena) generates through it.

from limner import Engine, GenerationRequest
engine = Engine()
images = engine.generate(GenerationRequest("a red apple, 3D render", n=4, seed=7))
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from limner.engine import compute, matting
from limner.engine.batching import Batcher
from limner.engine.registry import (
    BACKENDS,
    ModelSpec,
    load_models_file,
    shipped_models,
    spec_for_path,
)
from limner.engine.request import GeneratedImage, GenerationRequest
from limner.errors import InvalidRequest, UnknownModel


class Engine:
    def __init__(
        self,
        models_file: Path | None = None,
        specs: list[ModelSpec] | None = None,
        default: str | None = None,
        batching: bool = True,
        window_ms: float = 20.0,
        max_batch_images: int = 8,
        allow_paths: bool = True,
        aliases: dict[str, str] | None = None,
    ):
        """``allow_paths``: a model may also be named by a folder or file on disk (a convenience
        of the CLI and the Python API). The server turns it off: over HTTP only configured models
        are reachable, so a caller can neither load nor probe the server's disk."""
        self.specs: dict[str, ModelSpec] = {}
        file_default = None
        given = specs if specs is not None else shipped_models()  # shipped: newest name last
        extra: list[ModelSpec] = []
        for spec in given:
            self.specs[spec.name] = spec
        if models_file is not None:
            extra, file_default = load_models_file(models_file)
            for spec in extra:
                self.specs[spec.name] = spec
            if file_default is not None and file_default not in self.specs:
                raise InvalidRequest(
                    f"{models_file}: default = {file_default!r} names no model (known: {', '.join(sorted(self.specs))})",
                    param="models",
                )
        # without a default: the newest shipped model, else the file's first — never "whichever
        # name sorts last"
        fallback = (given or extra)[-1 if given else 0].name if (given or extra) else None
        self.default = default or file_default or fallback
        self.allow_paths = allow_paths
        # other names for models — OpenAI's ("gpt-image-1", "dall-e-3" …) for apps written for it
        self.aliases = {a: m for a, m in (aliases or {}).items() if a not in self.specs}
        for alias, target in self.aliases.items():
            if target not in self.specs:
                raise InvalidRequest(f"alias {alias!r} names no model ({target!r})", param="model")
        self.batching = batching
        self.window_s = window_ms / 1000
        self.max_batch_images = max_batch_images
        self._backends: dict[str, Any] = {}
        self._remote = ThreadPoolExecutor(max_workers=64, thread_name_prefix="limner-remote")
        self._batchers: dict[str, Batcher] = {}
        self._lock = threading.Lock()

    # -- models -------------------------------------------------------------------------------

    def resolve_name(self, model: str | None) -> str:
        name = model or self.default
        name = self.aliases.get(name, name) if name is not None else None
        if name is None:
            raise UnknownModel(
                "no model is available: ship weights in weights/ or pass --models models.toml",
                param="model",
            )
        if name not in self.specs:
            if self.allow_paths and Path(name).exists():
                spec = spec_for_path(Path(name))
                spec.name = name
                self.specs[name] = spec
            else:
                known = ", ".join(sorted(self.specs)) or "none"
                shown = name if len(name) <= 80 else name[:77] + "..."
                raise UnknownModel(f"unknown model {shown!r}; available: {known}", param="model")
        return name

    def backend(self, model: str | None = None) -> Any:
        """The loaded backend of a model (loaded on first use)."""
        name = self.resolve_name(model)
        with self._lock:
            if name not in self._backends:
                spec = self.specs[name]
                factory = BACKENDS[spec.backend]
                self._backends[name] = compute.run(
                    factory, spec.name, spec.path, defaults=spec.defaults, **spec.options
                )
            return self._backends[name]

    def models(self) -> list[dict]:
        """Every known model: loaded ones with full info, others from their spec."""
        out = []
        for name, spec in sorted(self.specs.items()):
            entry = {
                "name": name,
                "backend": spec.backend,
                "path": str(spec.path),
                "default": name == self.default,
            }
            if name in self._backends:
                entry.update(vars(self._backends[name].info()))
            out.append(entry)
        return out

    # -- generation ---------------------------------------------------------------------------

    def submit(self, request: GenerationRequest) -> Future:
        """Validate, then queue; the future resolves to the request's images."""
        request.validate()
        if request.background == "transparent":
            request.prompt = matting.prompt_for(request.prompt)  # a plain background, to cut out
        future = self._submit(request)
        return _then(future, functools.partial(self._finish, request))

    def _finish(self, request: GenerationRequest, images: list[GeneratedImage]) -> list[GeneratedImage]:
        """What every backend's images get: the model's hash in their parameters (as A1111
        records it), and the cut-out of a transparent background."""
        spec = self.specs.get(images[0].model) if images else None
        digest = model_hash(spec.path) if spec is not None else None
        out = []
        for im in images:
            params = {**im.parameters, **({"model_hash": digest} if digest else {})}
            if request.background == "transparent":
                im = dataclasses.replace(im, image=matting.cut_out(im.image))
                params["background"] = "transparent"
            out.append(dataclasses.replace(im, parameters=params))
        return out

    def _submit(self, request: GenerationRequest) -> Future:
        backend = self.backend(request.model)
        backend.resolve(request)  # model-specific checks (size, sampler …) before any work
        request.model = backend.name
        request.seeds()  # fix the seed now, so a retry or a log shows it
        if getattr(backend, "remote", False):
            # the model runs elsewhere and batches there: each request goes its own way, from a
            # thread of its own (not the compute thread, which would serialise the round trips)
            return self._remote.submit(_first, backend.generate, request)
        if not self.batching:
            future: Future = Future()
            try:
                result = compute.run(backend.generate, [request])[0]
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
            except BaseException as e:
                future.set_exception(e)
            return future
        with self._lock:
            if backend.name not in self._batchers:
                self._batchers[backend.name] = Batcher(backend, self.window_s, self.max_batch_images)
            batcher = self._batchers[backend.name]
        return batcher.submit(request)

    def generate(self, request: GenerationRequest, timeout: float | None = None) -> list[GeneratedImage]:
        return self.submit(request).result(timeout)

    def close(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop taking work; queued work finishes (``wait``), for at most ``timeout`` seconds."""
        with self._lock:
            batchers = list(self._batchers.values())
        for b in batchers:
            b.close(wait, timeout)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _then(future: Future, fn: Any) -> Future:
    """A future of ``fn(result)`` once ``future`` resolves (its exception, if it fails)."""
    out: Future = Future()

    def done(f: Future) -> None:
        try:
            out.set_result(fn(f.result()))
        except BaseException as e:
            out.set_exception(e)

    future.add_done_callback(done)
    return out


@functools.cache
def model_hash(path: Path) -> str | None:
    """The first 10 hex digits of the SHA-256 of a model's weights file (AUTOMATIC1111's "Model
    hash"), computed once per path; None for a folder that has no single weights file."""
    path = Path(path)
    weights = path / "denoiser.safetensors" if path.is_dir() else path
    if not weights.is_file():
        candidates = sorted(path.glob("*.safetensors")) if path.is_dir() else []
        if len(candidates) != 1:
            return None
        weights = candidates[0]
    digest = hashlib.sha256()
    with open(weights, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:10]


def _first(generate: Any, request: GenerationRequest) -> list[GeneratedImage]:
    """A remote backend's result for one request: its images, or the error it sent."""
    result = generate([request])[0]
    if isinstance(result, BaseException):
        raise result
    return result


def check_request(engine: Engine, request: GenerationRequest) -> None:
    """Validate without generating (for APIs that must answer 400 before queuing)."""
    request.validate()
    if request.model is not None and not isinstance(request.model, str):
        raise InvalidRequest("model must be a string", param="model")
    engine.backend(request.model).resolve(request)
