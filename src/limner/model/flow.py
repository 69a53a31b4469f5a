"""Rectified-flow training objective with x-prediction (pure functions; the network is a callable).

Path: x_σ = (1 − σ)·x₀ + σ·ε, σ ∈ [0, 1], σ = 1 pure noise (Liu et al. 2022; Esser et al. 2024).
The network predicts x̂₀; the loss is on the implied velocity v̂ = (x_σ − x̂₀)/σ, i.e. the x₀
error weighted by 1/σ² (clamped), as in Li & He 2025 ("Back to Basics", JiT).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_σ, σ) → x̂₀

SIGMA_FLOOR = 0.05  # clamp for the 1/σ weight: near-clean images must not dominate the loss


def sample_sigma(
    n: int,
    generator: torch.Generator | None = None,
    mean: float = 0.0,
    std: float = 1.0,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Logit-normal noise levels (Esser et al. 2024, SD3)."""
    z = torch.randn(n, generator=generator, device=device) * std + mean
    return torch.sigmoid(z)


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    s = sigma.view(-1, *([1] * (x0.dim() - 1)))
    return (1 - s) * x0 + s * noise


def flow_loss(denoise: Denoise, x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Mean squared velocity error of an x-predicting network; one value per image, (B,)."""
    x_t = add_noise(x0, noise, sigma)
    x0_hat = denoise(x_t, sigma)
    s = sigma.clamp(min=SIGMA_FLOOR).view(-1, *([1] * (x0.dim() - 1)))
    v_err = (x0_hat.float() - x0.float()) / s  # v̂ − v = (x₀ − x̂₀)/σ, sign irrelevant under the square
    return v_err.pow(2).flatten(1).mean(1)
