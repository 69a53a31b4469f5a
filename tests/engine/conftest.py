"""Engine fixtures: a tiny Limner model and a tiny diffusers pipeline, each saved to disk once
per session in the layout users have, and loaded through the same code paths users take."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tiny_diffusers import make_tiny_sd

from limner.engine.registry import ModelSpec
from limner.model.checkpoint import save_weights
from limner.model.denoiser import PRESETS, Denoiser
from limner.model.upsampler import UPSAMPLER_PRESETS, Upsampler


@pytest.fixture(autouse=True)
def _no_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may reach a model hub or pick up weights shipped in the repository."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LIMNER_WEIGHTS", str(tmp_path / "no-shipped-weights"))


@pytest.fixture(scope="session")
def tiny_limner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Limner weights folder (32 px denoiser, ×4 upsampler → 128 px) with random weights:
    every weight perturbed, so images depend on seed, prompt and guidance."""
    root = tmp_path_factory.mktemp("weights") / "tiny"
    g = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        denoiser = Denoiser(PRESETS["tiny"])
        upsampler = Upsampler(UPSAMPLER_PRESETS["tiny"])
    with torch.no_grad():
        for p in [*denoiser.parameters(), *upsampler.parameters()]:
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    save_weights(root / "denoiser.safetensors", denoiser, "denoiser", {"preset": "tiny", "steps": 0})
    save_weights(root / "upsampler.safetensors", upsampler, "upsampler")
    return root


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
