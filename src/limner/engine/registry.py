"""Where models come from: the shipped weights, a ``models.toml`` file, or a path.

Backends are a plain registry; the built-in models register the same way an addition does::

    register_backend("mine", MyBackend, check=check_mine)   # MyBackend(name, path, *, defaults, **options)

``MyBackend`` meets ``engine.backend.Backend``. An installed package can instead declare a
``limner.backends`` entry point, and ``models.toml`` may name any importable class directly
(``backend = "mypkg.backends:Mine"``).

A backend's constructor is its schema: the keyword parameters besides ``name``, ``path`` and
``defaults`` are the keys a ``models.toml`` may set for it, typed by their annotations. ``check``
(optional) looks at a spec without loading it and returns a one-line description, or raises a
LimnerError saying what is wrong. A ``models.toml`` names models::

    default = "limner-1"

    [models.sdxl]
    backend = "diffusers"
    path = "/models/sdxl-base"
    device = "cuda"
    dtype = "float16"
    defaults = { num_inference_steps = 30, guidance_scale = 6.0 }

Reading it is strict: an unknown key (a misspelt ``guidence_scale``) or a value of the wrong type
is an error naming the key and the file.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import itertools
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from limner.engine.backend import BackendFactory
from limner.errors import InvalidRequest, LimnerError, UnknownModel

BACKENDS: dict[str, BackendFactory] = {}
CHECKS: dict[str, Callable[[ModelSpec], str]] = {}

# request parameters a model may give defaults for, and their types (the request checks ranges)
DEFAULT_KEYS: dict[str, Any] = {
    "num_inference_steps": int,
    "guidance_scale": float,
    "sampler": str,
    "loras": dict[str, float],
    # sampling settings of the built-in backend that a request cannot set (model/sampling.py)
    "guidance_interval": list[float],
    "shift": float,
    "sigmas": list[float],
    "tone_guidance": float,
}
LIMNER_ONLY = ("guidance_interval", "shift", "sigmas", "tone_guidance")


def register_backend(name: str, factory: BackendFactory, check: Callable[[ModelSpec], str] | None = None) -> None:
    BACKENDS[name] = factory
    if check is not None:
        CHECKS[name] = check


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


@dataclass
class ModelSpec:
    name: str
    backend: str
    path: Path
    options: dict = field(default_factory=dict)  # device, dtype, cpu_offload …
    defaults: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ModelState:
    """A configured model as start-up sees it, without loading it."""

    name: str
    backend: str
    ready: bool  # the check passed: the model should load
    detail: str  # what the path holds, or what is wrong and what to do (one line; names server paths)


def check(spec: ModelSpec) -> ModelState:
    """Look at a model without loading it: its path exists and holds what its backend loads."""
    probe = CHECKS.get(spec.backend)
    try:
        if not spec.path.exists():
            raise LimnerError(f"model {spec.name!r}: {spec.path} does not exist")
        detail = probe(spec) if probe else f"{spec.path} (backend {spec.backend!r} registers no check)"
    except LimnerError as e:
        return ModelState(spec.name, spec.backend, False, e.message)
    return ModelState(spec.name, spec.backend, True, detail)


def _builtin_backends() -> None:
    from limner.engine.builtin import LimnerBackend
    from limner.engine.diffusers_backend import DiffusersBackend
    from limner.engine.diffusers_files import check_diffusers

    register_backend("limner", LimnerBackend, check=_check_limner)
    register_backend("diffusers", DiffusersBackend, check=check_diffusers)  # diffusers itself is imported on use


def _check_limner(spec: ModelSpec) -> str:
    """A Limner denoiser's header (its metadata, not its tensors), the default sampler, no LoRA."""
    import json

    from safetensors import safe_open

    from limner.model.checkpoint import FORMAT, weight_files
    from limner.model.sampling import SAMPLERS

    where = f"model {spec.name!r}"
    try:
        files = weight_files(spec.path / "denoiser.safetensors" if spec.path.is_dir() else spec.path)
        with safe_open(str(files[0]), "pt") as f:  # reads the header only
            meta = f.metadata() or {}
    except Exception:
        raise LimnerError(f"{where}: {spec.path} holds no readable Limner denoiser (denoiser.safetensors)") from None
    if meta.get("format") != FORMAT or meta.get("kind") != "denoiser":
        raise LimnerError(f"{where}: {files[0]} is not a Limner denoiser (format {meta.get('format')!r})")
    sampler = spec.defaults.get("sampler")
    if sampler is not None and sampler not in SAMPLERS:
        raise LimnerError(f"{where}: unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")
    if spec.defaults.get("loras"):
        raise LimnerError(f"{where}: Limner models take no LoRA adapters; remove defaults.loras")
    info = {k: json.loads(v) for k, v in meta.items() if k in ("preset", "steps")}
    return " ".join(["Limner", *([str(info["preset"])] if "preset" in info else []), "denoiser"]) + (
        f", {info['steps']} training steps" if "steps" in info else ""
    )


_builtin_backends()


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
    """Specs and the default model name from a ``models.toml``, every key and type checked; an
    error starts with the file and the line (``models.toml:7: …``) as compilers' do."""
    path = Path(path)
    try:
        text = path.read_text()
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise InvalidRequest(f"models file {path} not found", param="models") from None
    except tomllib.TOMLDecodeError as e:
        raise InvalidRequest(f"models file {path} is not valid TOML: {e}", param="models") from None
    src = _Source(path, text)
    _known_keys(data, {"default": str, "models": dict}, lambda key: f"{src.at(None, key)}:", "top-level key")
    default = data.get("default")
    if default is not None and not isinstance(default, str):
        raise InvalidRequest(f"{src.at(None, 'default')}: default must be a model name (a string)", param="models")
    if not isinstance(data.get("models", {}), dict):
        raise InvalidRequest(f"{src.at(None, 'models')}: models must be tables ([models.NAME])", param="models")
    specs = []
    for name, entry in data.get("models", {}).items():

        def where(key: str | None = None, name: str = name) -> str:
            return f"{src.at(name, key)}: model {name!r}"

        if not isinstance(entry, dict):
            raise InvalidRequest(f"{where()} must be a table ([models.{name}])", param="models")
        backend = entry.get("backend", "limner")
        try:
            factory = backend_factory(backend)
        except InvalidRequest as e:
            raise InvalidRequest(f"{where('backend')}: {e.message}", param="models") from None
        options = backend_options(factory)
        _known_keys(entry, {"backend": str, "path": str, "defaults": dict, **options}, where, "key")
        limner_only = [k for k in LIMNER_ONLY if k in entry.get("defaults", {})]
        if limner_only and backend != "limner":
            raise InvalidRequest(
                f"{where('defaults')}: defaults.{limner_only[0]} is a setting of Limner models, not of {backend!r} ones",
                param="models",
            )
        if "path" not in entry:
            raise InvalidRequest(f"{where()} has no path", param="models")

        def in_defaults(key: str, where: Callable[..., str] = where) -> str:
            return f"{where(key)}: defaults"

        specs.append(
            ModelSpec(
                name,
                backend,
                _typed(entry["path"], Path, f"{where('path')}: path", path.parent),
                {k: _typed(v, options[k], f"{where(k)}: {k}", path.parent) for k, v in entry.items() if k in options},
                check_defaults(entry.get("defaults", {}), in_defaults),
            )
        )
    return specs, default


class _Source:
    """Where in a models.toml a key is set, for error messages (tomllib keeps no positions)."""

    def __init__(self, path: Path, text: str):
        self.path, self.lines = path, text.splitlines()

    def at(self, model: str | None, key: str | None) -> str:
        """``file:line`` of ``key`` in the top level (model None) or in ``[models.MODEL]`` and its
        sub-tables (key None: the table's header); ``file`` alone when the key is not found as
        written there."""
        tables = [f"models.{model}", f'models."{model}"'] if model is not None else []
        assign = re.compile(rf"(^|[{{,]\s*)[\"']?{re.escape(key)}[\"']?\s*=") if key else None
        table = ""
        for n, line in enumerate(self.lines, 1):
            code = line.split("#")[0].strip()
            if code.startswith("["):
                table = code.strip("[] ")
                if any(table == t if key is None else table == f"{t}.{key}" for t in tables):
                    return f"{self.path}:{n}"  # [models.x], or [models.x.defaults] for key defaults
                continue
            inside = any(table == t or table.startswith(f"{t}.") for t in tables) if tables else table == ""
            if inside and assign is not None and assign.search(code):
                return f"{self.path}:{n}"
        return str(self.path)


def backend_options(factory: Any) -> dict[str, Any]:
    """The keys a models.toml may set for a backend, with their types: its constructor's keyword
    parameters besides name, path and defaults."""
    init = factory.__init__ if inspect.isclass(factory) else factory
    hints = typing.get_type_hints(init)
    return {
        p.name: hints.get(p.name, Any)
        for p in inspect.signature(init).parameters.values()
        if p.name not in ("self", "name", "path", "defaults") and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def _known_keys(table: dict, known: dict, where: Callable[[str], str], what: str) -> None:
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise InvalidRequest(
                f"{where(key)} has unknown {what} {key!r}; {hint}(known: {', '.join(known)})", param="models"
            )


def check_defaults(table: Any, where: Callable[[str], str]) -> dict:
    """``where(key)``: the location prefix of a key in the defaults table."""
    from limner.engine.request import GenerationRequest

    if not isinstance(table, dict):
        raise InvalidRequest(
            f"{where('defaults')} must be a table, e.g. {{ num_inference_steps = 30 }}", param="models"
        )
    _known_keys(table, DEFAULT_KEYS, where, "key")
    values = {k: _typed(v, DEFAULT_KEYS[k], f"{where(k)}.{k}", Path()) for k, v in table.items()}
    interval = values.get("guidance_interval")
    if interval is not None and not (
        len(interval) == 2 and all(isinstance(v, float) for v in interval) and 0 <= interval[0] < interval[1] <= 1
    ):
        raise InvalidRequest(
            f"{where('guidance_interval')}.guidance_interval must be two noise levels [lo, hi] with "
            f"0 ≤ lo < hi ≤ 1, e.g. [0.2, 0.8], not {interval!r}",
            param="models",
        )
    sigmas = values.get("sigmas")
    if sigmas and not (
        len(sigmas) <= 200 and sigmas[0] == 1 and sigmas[-1] > 0 and all(a > b for a, b in itertools.pairwise(sigmas))
    ):
        raise InvalidRequest(
            f"{where('sigmas')}.sigmas must be 1 to 200 noise levels falling from 1 (pure noise) to above 0 "
            f"(0 follows the last), e.g. [1.0, 0.9, 0.7, 0.4], or [] for none, not {sigmas!r}",
            param="models",
        )
    steps = values.get("num_inference_steps")
    if sigmas and steps != len(sigmas):
        raise InvalidRequest(
            f"{where('sigmas')}.sigmas has {len(sigmas)} noise levels but num_inference_steps is "
            f"{'not set' if steps is None else steps}: set it to {len(sigmas)} beside them (the schedule "
            "serves draws of as many steps as it has levels)",
            param="models",
        )
    if values.get("shift", 1.0) <= 0:
        raise InvalidRequest(f"{where('shift')}.shift must be above 0, not {values['shift']!r}", param="models")
    if not 0 <= values.get("tone_guidance", 0.0) <= 30:
        raise InvalidRequest(
            f"{where('tone_guidance')}.tone_guidance must be from 0 (off) to 30, not {values['tone_guidance']!r}",
            param="models",
        )
    try:  # the same bounds as a request's (steps 1–200, guidance 0–30 …)
        GenerationRequest("defaults", **{k: v for k, v in values.items() if k not in LIMNER_ONLY}).validate()
    except InvalidRequest as e:
        raise InvalidRequest(f"{where(e.param or 'defaults')}: {e.message}", param="models") from None
    return values


def _typed(value: Any, kind: Any, where: str, base: Path) -> Any:
    """``value`` as ``kind`` (a models.toml value: str, int, float, bool, Path, Literal, dict[str, …]);
    a relative Path is taken from the file's folder."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):  # X | None: TOML has no null
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    origin = typing.get_origin(kind)
    if origin is typing.Literal:
        if value not in typing.get_args(kind):
            choices = ", ".join(repr(c) for c in typing.get_args(kind))
            raise InvalidRequest(f"{where} must be one of {choices}, not {value!r}", param="models")
        return value
    if origin is dict or kind is dict:
        if not isinstance(value, dict):
            raise InvalidRequest(f"{where} must be a table, not {value!r}", param="models")
        inner = typing.get_args(kind)[1] if origin is dict else Any
        return {k: _typed(v, inner, f"{where}.{k}", base) for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise InvalidRequest(f"{where} must be a list, not {value!r}", param="models")
        return [_typed(v, typing.get_args(kind)[0], f"{where}[{i}]", base) for i, v in enumerate(value)]
    if kind is Path:
        if not isinstance(value, str) or not value:
            raise InvalidRequest(f"{where} must be a path (a string), not {value!r}", param="models")
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequest(f"{where} must be a number, not {value!r}", param="models")
        return float(value)
    if kind in (int, str, bool) and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        names = {int: "an integer", str: "a string", bool: "true or false"}
        raise InvalidRequest(f"{where} must be {names[kind]}, not {value!r}", param="models")
    return value


def spec_for_path(path: Path) -> ModelSpec:
    """A model given by path: Limner weights, or anything diffusers can load."""
    from limner.engine.builtin import is_limner_weights

    path = Path(path)
    if not path.exists():
        raise UnknownModel(f"no model named or at {path}", param="model")
    backend = "limner" if is_limner_weights(path) else "diffusers"
    return ModelSpec(path.name, backend, path)
