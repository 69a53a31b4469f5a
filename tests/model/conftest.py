"""Tiny networks for the model tests, with every weight perturbed: a fresh Denoiser starts with a
zero output head (and the Upsampler with a zero tail), so untouched they would hide most bugs."""

from __future__ import annotations

import pytest
import torch

from limner.model.denoiser import PRESETS, Denoiser
from limner.model.upsampler import UPSAMPLER_PRESETS, Upsampler


def perturbed(module: torch.nn.Module, seed: int, scale: float = 0.05) -> torch.nn.Module:
    """``module`` with seeded noise added to every parameter; the global RNG is left alone."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return module.eval()


@pytest.fixture
def tiny_denoiser() -> Denoiser:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Denoiser(PRESETS["tiny"])
    return perturbed(model, 1)


@pytest.fixture
def tiny_x_denoiser() -> Denoiser:
    """The tiny preset with exemplar channels, long skips and the output convolution."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Denoiser(PRESETS["tiny-x"])
    return perturbed(model, 3)


@pytest.fixture
def tiny_upsampler() -> Upsampler:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Upsampler(UPSAMPLER_PRESETS["tiny"])
    return perturbed(model, 2)
