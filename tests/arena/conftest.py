"""Arena fixtures: two tiny untrained Limner models (different seeds, so their images differ), an
app on a temporary data folder, and a curated pool seeded with a few prompts of each category."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from arena_helpers import MODELS, POOL, Clock
from fastapi import FastAPI
from fastapi.testclient import TestClient

from limner.engine import Engine, GenerationRequest
from limner.engine.metadata import plain_png
from limner.engine.registry import ModelSpec
from limner.server.app import create_app
from limner.server.settings import Settings
from limner.store.db import ArenaImage
from tiny import tiny_weights


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("weights")
    return {name: tiny_weights(root / name, seed) for seed, name in enumerate(MODELS)}


def specs_for(model_dirs: dict[str, Path]) -> list[ModelSpec]:
    return [ModelSpec(n, "limner", p, defaults={"num_inference_steps": 2}) for n, p in model_dirs.items()]


@pytest.fixture
def engine_factory(model_dirs: dict[str, Path]) -> Callable[[], Engine]:
    return lambda: Engine(specs=specs_for(model_dirs), window_ms=1)


@pytest.fixture
def settings(tmp_path: Path, engine_factory: Callable[[], Engine]) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        secret="test-secret",
        cookie_secure=False,
        engine_factory=engine_factory,
        signups_per_address=10_000,  # every test's accounts come from one address
    )


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """The app with its lifespan running; the client keeps the voter cookie like a browser."""
    with TestClient(app) as tc:
        yield tc


@pytest.fixture
def arena(client: TestClient):
    return client.app.state.arena  # type: ignore[attr-defined]


@pytest.fixture
def clock(arena) -> Clock:
    """The arena's clock, made to pass ``clock.step`` seconds between any two readings: voters
    look at a battle for that long before voting (3 s unless a test makes them hurry)."""
    arena.clock = Clock()
    return arena.clock


@pytest.fixture(scope="session")
def pool_images(model_dirs: dict[str, Path]) -> dict[tuple[str, str], bytes]:
    """The pool's images, drawn once per session: (prompt, model) → PNG bytes."""
    with Engine(specs=specs_for(model_dirs), window_ms=1) as engine:
        return {
            (prompt, model): plain_png(engine.generate(GenerationRequest(prompt, seed=k, model=model))[0].image)
            for k, prompt in enumerate(POOL)
            for model in MODELS
        }


@pytest.fixture
def pool(arena, pool_images: dict[tuple[str, str], bytes]) -> list[str]:
    """The curated pool as ``Arena.seed_pool`` leaves it (every prompt of POOL drawn by both
    models), stored from the session's images rather than drawn again for every test."""
    with arena.db.session() as s:
        for (prompt, model), data in pool_images.items():
            row = arena.files.save(s, data, "png", meta={"arena": True})
            s.add(ArenaImage(prompt=prompt, model=model, file_id=row.id))
    return POOL
