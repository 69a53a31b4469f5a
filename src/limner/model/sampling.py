"""Samplers and noise schedules for x-predicting flow models: small stateless functions.

Each sampler takes ``denoise(x, σ) → x̂₀`` (guidance already applied, see ``cfg_denoiser``),
a starting noise ``x`` and a decreasing σ schedule ending at 0, and keeps all state in locals,
so one loaded model can serve concurrent requests (after k-diffusion's ``sampling.py``).
``callback(i, x, x0_hat)`` sees each step; it may raise to cancel.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[int, torch.Tensor, torch.Tensor], None] | None


def flow_sigmas(steps: int, shift: float = 1.0, start: float = 1.0, device: str | torch.device = "cpu") -> torch.Tensor:
    """``steps + 1`` noise levels from ``start`` to 0, time-shifted toward high noise by ``shift``
    (σ' = shift·σ / (1 + (shift − 1)·σ), Esser et al. 2024). ``start`` is the first level itself
    (an edit's strength), whatever the shift: the steps are spaced evenly before shifting."""
    t0 = start / (shift - (shift - 1) * start)  # the unshifted level that the shift takes to start
    s = torch.linspace(t0, 0.0, steps + 1, device=device, dtype=torch.float64)
    s = shift * s / (1 + (shift - 1) * s)
    return s.float()


def _velocity(x: torch.Tensor, x0: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return (x - x0) / sigma


def sample_euler(denoise: Denoise, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback = None) -> torch.Tensor:
    """First-order Euler steps along the flow (Karras et al. 2022, Algorithm 1 without churn)."""
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        x0 = denoise(x, s.expand(x.shape[0]))
        if callback:
            callback(i, x, x0)
        x = x0 if s_next == 0 else x + (s_next - s) * _velocity(x, x0, s)
    return x


def sample_heun(denoise: Denoise, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback = None) -> torch.Tensor:
    """Second-order Heun steps; the last step is Euler (Karras et al. 2022, Algorithm 1)."""
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        x0 = denoise(x, s.expand(x.shape[0]))
        if callback:
            callback(i, x, x0)
        if s_next == 0:
            x = x0
            continue
        d = _velocity(x, x0, s)
        x_next = x + (s_next - s) * d
        d_next = _velocity(x_next, denoise(x_next, s_next.expand(x.shape[0])), s_next)
        x = x + (s_next - s) * (d + d_next) / 2
    return x


def sample_dpmpp_2m(denoise: Denoise, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback = None) -> torch.Tensor:
    """DPM-Solver++(2M) in data-prediction form, written for the flow path
    x_σ = (1−σ)·x₀ + σ·ε, where λ = log((1−σ)/σ) (Lu et al. 2022)."""
    old_x0 = None
    h_last = None
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        x0 = denoise(x, s.expand(x.shape[0]))
        if callback:
            callback(i, x, x0)
        if s_next == 0:
            x = x0
            break
        lam, lam_next = torch.log((1 - s) / s), torch.log((1 - s_next) / s_next)
        h = lam_next - lam
        if old_x0 is None or h_last is None:
            d = x0
        else:
            r = h_last / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * old_x0
        x = (s_next / s) * x - (1 - s_next) * torch.expm1(-h) * d
        old_x0, h_last = x0, h
    return x


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "euler": sample_euler,
    "heun": sample_heun,
    "dpmpp_2m": sample_dpmpp_2m,
}


def guided_at(sigma: float, interval: tuple[float, float]) -> bool:
    """Whether guidance applies at noise level ``sigma``: lo ≤ σ ≤ hi, to float32's rounding (the
    schedule's 0.8 is 0.80000001)."""
    return interval[0] - 1e-6 <= sigma <= interval[1] + 1e-6


def cfg_denoiser(
    model: Callable[..., torch.Tensor],
    cond: dict,
    uncond: dict | None,
    scale: float | torch.Tensor,
    interval: tuple[float, float] = (0.0, 1.0),
    contrast: tuple[dict, torch.Tensor, torch.Tensor] | None = None,
) -> Denoise:
    """Classifier-free guidance in x̂₀ space: x̂ = x̂_u + scale·(x̂_c − x̂_u), both in one batch.
    ``scale`` may be a tensor (B, 1, 1, 1): one guidance per image. Guidance applies only at noise
    levels lo ≤ σ ≤ hi of ``interval`` (Kynkäänniemi et al. 2024: at high noise it costs variety,
    at low noise it does nothing); elsewhere the conditional row runs alone, one row instead of two.

    ``contrast`` = (inputs, rows, weight): for the images at ``rows`` (K,) one more row, conditioned
    on ``inputs`` (K rows; keys it lacks are taken from ``cond``), and x̂ += weight·(x̂_c − x̂_t),
    weight (K, 1, 1, 1): guidance along what the conditioning has and ``inputs`` lacks (tone
    guidance: the prompt against itself without its skin tone). It runs where guidance does."""
    if contrast is None and (uncond is None or (not isinstance(scale, torch.Tensor) and scale == 1.0)):
        return lambda x, s: model(x, s, **cond)

    def pair(u: torch.Tensor | None, c: torch.Tensor | None) -> torch.Tensor | None:
        if c is None:
            return None
        return torch.cat([torch.zeros_like(c) if u is None else u, c])  # a missing input is a blank one

    both = {k: pair((uncond or cond).get(k), cond[k]) for k in cond}
    rows = weight = None
    if contrast is not None:
        inputs, rows, weight = contrast
        both = {
            k: None if v is None else torch.cat([v, inputs[k] if inputs.get(k) is not None else cond[k][rows]])
            for k, v in both.items()
        }

    def denoise(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        if not guided_at(float(s[0]), interval):
            return model(x, s, **cond)
        b = x.shape[0]
        xs, ss = [x, x], [s, s]
        if rows is not None:
            xs.append(x[rows])
            ss.append(s[rows])
        out = model(torch.cat(xs), torch.cat(ss), **both)
        u, c = out[:b], out[b : 2 * b]
        guided = u + scale * (c - u) if uncond is not None else c
        if rows is not None and weight is not None:
            guided = guided.index_add(0, rows, weight * (c[rows] - out[2 * b :]))
        return guided

    return denoise
