"""Engine fixtures: a tiny Limner model and a tiny diffusers pipeline, each saved to disk once
per session in the layout users have, and loaded through the same code paths users take."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny_diffusers import make_tiny_sd

from limner.engine.registry import ModelSpec


@pytest.fixture(autouse=True)
def _no_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may reach a model hub or pick up weights shipped in the repository."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LIMNER_WEIGHTS", str(tmp_path / "no-shipped-weights"))


@pytest.fixture(scope="session")
def tiny_limner(tiny_model: Path) -> Path:
    """A Limner weights folder (the session's tiny model), loaded as users load theirs."""
    return tiny_model


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A randomly initialised Stable Diffusion pipeline folder (16×16 images)."""
    with pytest.MonkeyPatch.context() as m:
        m.setenv("HF_HUB_OFFLINE", "1")
        yield make_tiny_sd(tmp_path_factory.mktemp("diffusers"))


@pytest.fixture
def limner_spec(tiny_limner: Path) -> ModelSpec:
    return ModelSpec("tiny", "limner", tiny_limner)


@pytest.fixture
def models_toml(tmp_path: Path, tiny_limner: Path, tiny_sd: Path) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(
        f'default = "tiny"\n\n'
        f'[models.tiny]\npath = "{tiny_limner}"\n'
        f"defaults = {{ num_inference_steps = 3 }}\n\n"
        f'[models.tiny-sd]\nbackend = "diffusers"\npath = "{tiny_sd}"\ndevice = "cpu"\n'
        f"defaults = {{ num_inference_steps = 2 }}\n"
    )
    return path
