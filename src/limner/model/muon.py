"""Muon: momentum SGD whose update for a weight matrix is orthogonalised by a Newton–Schulz
iteration (Jordan et al. 2024, modded-nanogpt; "Muon is Scalable for LLM Training", Liu et al.
2025). One optimizer holds both kinds of parameter group: ``muon=True`` groups (the transformer
blocks' matrices) take Muon steps, the others (embeddings, modulation, head, norms, biases) AdamW
steps, so a run has one optimizer state to save and resume.
"""

from __future__ import annotations

import torch
from torch import nn


def orthogonalise(g: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """≈ U·Vᵀ of g = U·S·Vᵀ by a quintic Newton–Schulz iteration in bfloat16 (coefficients from
    modded-nanogpt; they trade exactness for speed: singular values land in about [0.7, 1.2])."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.bfloat16()
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    x = x / (x.norm() + 1e-7)
    for _ in range(steps):
        s = x @ x.T
        x = a * x + (b * s + c * s @ s) @ x
    return (x.T if tall else x).to(g.dtype)


def split_params(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(matrices for Muon, the rest for AdamW): 2-D weights inside ``model.blocks`` and the long
    skips; everything at the network's edges stays with AdamW, as Muon's authors advise."""
    muon: list[nn.Parameter] = []
    seen: set[int] = set()
    for part in ("blocks", "skips"):
        module = getattr(model, part, None)
        if module is None:
            continue
        for name, p in module.named_parameters():
            if p.ndim == 2 and not name.endswith("modulation"):
                muon.append(p)
                seen.add(id(p))
    return muon, [p for p in model.parameters() if id(p) not in seen]


class Muon(torch.optim.Optimizer):
    """Groups with ``muon=True``: Nesterov momentum, orthogonalised, scaled by √max(1, rows/cols)
    and by 0.2·√max(rows, cols) so its RMS matches AdamW's (Liu et al. 2025), which lets both kinds
    of group share one learning-rate schedule. Other groups: AdamW."""

    def __init__(self, groups: list[dict], lr: float, momentum: float = 0.95, betas=(0.9, 0.99), weight_decay=0.0):
        defaults = {"lr": lr, "momentum": momentum, "betas": betas, "weight_decay": weight_decay, "muon": False}
        super().__init__(groups, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if wd:
                    p.mul_(1 - lr * wd)
                if group["muon"]:
                    buf = state.setdefault("momentum_buffer", torch.zeros_like(p))
                    buf.lerp_(p.grad, 1 - group["momentum"])
                    update = orthogonalise(p.grad.lerp(buf, group["momentum"]))
                    rows, cols = p.shape
                    p.add_(update, alpha=-lr * 0.2 * max(rows, cols) ** 0.5)
                    continue
                b1, b2 = group["betas"]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = float(state["step"])
                state["exp_avg"].lerp_(p.grad, 1 - b1)
                state["exp_avg_sq"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                denom = (state["exp_avg_sq"] / (1 - b2**t)).sqrt_().add_(1e-8)
                p.addcdiv_(state["exp_avg"], denom, value=-lr / (1 - b1**t))
        return None
