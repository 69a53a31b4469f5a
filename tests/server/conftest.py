"""Fixtures for the Images API: a tiny untrained model, an app on a temporary data folder, API keys
and the official ``openai`` client talking to the app in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
from api_helpers import openai_client
from fastapi import FastAPI
from fastapi.testclient import TestClient

from limner.engine import Engine
from limner.engine.registry import ModelSpec
from limner.server.app import create_app
from limner.server.settings import Settings
from limner.store.keys import create_key


@pytest.fixture
def engine_factory(tiny_model: Path) -> Callable[[], Engine]:
    return lambda: Engine(specs=[ModelSpec("tiny", "limner", tiny_model)], window_ms=5)


@pytest.fixture
def settings(tmp_path: Path, engine_factory: Callable[[], Engine]) -> Settings:
    return Settings(data_dir=tmp_path / "data", secret="test-secret", engine_factory=engine_factory)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """The app with its lifespan running (engine and database open)."""
    with TestClient(app) as tc:
        yield tc


@pytest.fixture
def make_key(client: TestClient) -> Callable[..., str]:
    """``make_key(images_per_minute=…, images_per_day=…)`` → a new key in clear."""

    def make(name: str = "test", **limits: int | None) -> str:
        with client.app.state.db.session() as s:  # type: ignore[attr-defined]
            key, _ = create_key(s, name, **limits)
        return key

    return make


@pytest.fixture
def key(make_key: Callable[..., str]) -> str:
    return make_key()


@pytest.fixture
def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def oai(client: TestClient, key: str) -> openai.OpenAI:
    """The official client, pointed at the app in-process."""
    return openai_client(client, key)
