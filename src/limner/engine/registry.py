"""Where models come from: the shipped weights, a ``models.toml`` file, or a path.

Backends are a plain registry; the built-in model registers the same way an addition does::

    register_backend("mine", MyBackend)   # MyBackend(name, path, *, defaults, **options): an engine.backend.Backend

An installed package can instead declare a ``limner.backends`` entry point, and ``models.toml``
may name any importable class directly (``backend = "mypkg.backends:Mine"``).

A ``models.toml`` names models::

    default = "limner-1"

    [models.sdxl]
    backend = "diffusers"
    path = "/models/sdxl-base"
    device = "cuda"
    dtype = "float16"
    defaults = { num_inference_steps = 30, guidance_scale = 6.0 }
"""

from __future__ import annotations

import importlib
import os
import tomllib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from limner.engine.backend import Backend, BackendFactory
from limner.errors import InvalidRequest, UnknownModel

BACKENDS: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    BACKENDS[name] = factory


def backend_factory(name: str) -> BackendFactory:
    """The factory of a backend: registered by name, declared by an installed package's
    ``limner.backends`` entry point, or ``"package.module:Class"``."""
    if name in BACKENDS:
        return BACKENDS[name]
    for point in entry_points(group="limner.backends"):
        if point.name == name:
            register_backend(name, point.load())
            return BACKENDS[name]
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise InvalidRequest(f"backend {name!r} cannot be loaded: {e}", param="models") from None
        register_backend(name, factory)
        return factory
    known = ", ".join(sorted(BACKENDS))
    raise InvalidRequest(
        f"unknown backend {name!r} (known: {known}; or name a class as 'package.module:Class')", param="models"
    )


def _builtin_backends() -> None:
    from limner.engine.builtin import LimnerBackend

    register_backend("limner", LimnerBackend)

    def diffusers_factory(*args: Any, **kwargs: Any) -> Backend:  # imported on use: diffusers is optional
        from limner.engine.diffusers_backend import DiffusersBackend

        return DiffusersBackend(*args, **kwargs)

    register_backend("diffusers", diffusers_factory)


_builtin_backends()


@dataclass
class ModelSpec:
    name: str
    backend: str
    path: Path
    options: dict = field(default_factory=dict)  # device, dtype, cpu_offload …
    defaults: dict = field(default_factory=dict)


def weights_dir() -> Path:
    """The shipped weights: $LIMNER_WEIGHTS, else the repository's ``weights/``, else ./weights."""
    env = os.environ.get("LIMNER_WEIGHTS")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[3] / "weights"
    return repo if repo.exists() else Path("weights")


def shipped_models() -> list[ModelSpec]:
    """Every ``weights/limner-*`` folder that holds a denoiser, newest name last."""
    from limner.engine.builtin import is_limner_weights

    root = weights_dir()
    if not root.exists():
        return []
    return [ModelSpec(d.name, "limner", d) for d in sorted(root.iterdir()) if d.is_dir() and is_limner_weights(d)]


def load_models_file(path: Path) -> tuple[list[ModelSpec], str | None]:
    """Specs and the default model name from a ``models.toml``."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidRequest(f"models file {path} not found", param="models") from None
    except tomllib.TOMLDecodeError as e:
        raise InvalidRequest(f"models file {path} is not valid TOML: {e}", param="models") from None
    specs = []
    for name, entry in data.get("models", {}).items():
        backend = entry.get("backend", "limner")
        try:
            backend_factory(backend)
        except InvalidRequest as e:
            raise InvalidRequest(f"{path}: model {name!r}: {e.message}", param="models") from None
        if "path" not in entry:
            raise InvalidRequest(f"{path}: model {name!r} has no path", param="models")
        p = Path(entry["path"]).expanduser()
        if not p.is_absolute():
            p = path.parent / p
        options = {k: v for k, v in entry.items() if k not in ("backend", "path", "defaults")}
        specs.append(ModelSpec(name, backend, p, options, entry.get("defaults", {})))
    return specs, data.get("default")


def spec_for_path(path: Path) -> ModelSpec:
    """A model given by path: Limner weights, or anything diffusers can load."""
    from limner.engine.builtin import is_limner_weights

    path = Path(path)
    if not path.exists():
        raise UnknownModel(f"no model named or at {path}", param="model")
    backend = "limner" if is_limner_weights(path) else "diffusers"
    return ModelSpec(path.name, backend, path)
