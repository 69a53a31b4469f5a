"""The Limner denoiser: a diffusion transformer over large pixel patches.

It maps a noisy image x_σ, the noise level σ, the caption (MiniLM token states and sentence
embedding) and an optional glyph canvas (the text the image must spell, white on black) to a
prediction of the clean image — x-prediction, which lets a small transformer work on big pixel
patches (Li & He 2025, "Back to Basics: Let Denoising Generative Models Denoise").

Why pixels and 8×8 patches: on a 2-core CPU with AMX, matmuls in bfloat16 are ~12× faster
than float32 while convolutions are not, so a transformer over 64 tokens samples four images in
well under a second; detail above 64×64 comes from the learned upsampler (upsampler.py).

Blocks follow DiT (Peebles & Xie 2023) with PixArt-α's single shared adaLN and cross-attention
to the text tokens; q/k are RMS-normalised for stability at high learning rates.

Optional parts (off in limner-1's ``base``; each starts at zero, so weights trained without it
load unchanged and the network computes exactly what it did before):
  - an **exemplar**: extra input channels holding a blurred, spatially aligned picture of the
    same concept drawn elsewhere (retrieval conditioning, Blattmann et al. 2022 "Semi-Parametric
    Neural Image Synthesis"; see ``limner/data/exemplars.py``);
  - U-ViT **long skips** from block i to block depth−1−i (Bao et al. 2023);
  - a residual 3×3 **output convolution** over the unpatchified image, which can smooth the seams
    between 8×8 patches that a per-token linear head cannot see.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DenoiserConfig:
    resolution: int = 64  # side of the (square) image the model denoises
    patch: int = 8
    width: int = 448
    depth: int = 8
    heads: int = 7
    mlp_ratio: float = 4.0
    text_width: int = 384  # MiniLM-L6
    glyph_channels: int = 1  # 0 disables the glyph-canvas input
    exemplar_channels: int = 0  # 4 = premultiplied RGB + alpha of a retrieved exemplar
    long_skips: bool = False
    out_conv: int = 0  # hidden channels of the residual output convolution; 0 = none

    @property
    def tokens(self) -> int:
        return (self.resolution // self.patch) ** 2

    def to_dict(self) -> dict:
        return asdict(self)


_BASE = DenoiserConfig(resolution=64, patch=8, width=448, depth=8, heads=7, mlp_ratio=3.5)
_EXTRAS: dict = {"exemplar_channels": 4, "long_skips": True, "out_conv": 32}

PRESETS: dict[str, DenoiserConfig] = {
    "tiny": DenoiserConfig(resolution=32, patch=8, width=64, depth=2, heads=2),
    "small": DenoiserConfig(resolution=64, patch=8, width=384, depth=8, heads=6),
    "base": _BASE,
    # limner-2: base plus exemplar channels, long skips and the output convolution
    "tiny-x": DenoiserConfig(resolution=32, patch=8, width=64, depth=2, heads=2, **_EXTRAS),
    "xs-x": DenoiserConfig(resolution=64, patch=8, width=256, depth=8, heads=4, **_EXTRAS),
    "base-x": replace(_BASE, **_EXTRAS),
}


def timestep_embedding(sigma: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of σ ∈ [0, 1] scaled to [0, 1000] (as in DDPM/DiT)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=sigma.device) / half)
    args = sigma.float()[:, None] * 1000.0 * freqs[None]  # (B, half)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, dim)


def sincos_2d(grid: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding, (grid², dim)."""
    coords = torch.arange(grid, dtype=torch.float32)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float32) / quarter)
    out = [f(c.flatten()[:, None] * omega[None]) for c in (yy, xx) for f in (torch.sin, torch.cos)]
    return torch.cat(out, dim=1)  # (G², dim)


class RMSNorm(nn.Module):
    """RMS normalisation computed in float32 and returned in the input's dtype (autocast-safe)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight).to(x.dtype)


class Attention(nn.Module):
    """Multi-head attention with RMS-normalised queries and keys; self- or cross-."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(context_dim or dim, 2 * dim)
        self.q_norm = RMSNorm(dim // heads)
        self.k_norm = RMSNorm(dim // heads)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        b, n, d = x.shape
        ctx = x if context is None else context
        h = self.heads
        q = self.q(x).view(b, n, h, d // h).transpose(1, 2)  # (B, H, N, dh)
        k, v = self.kv(ctx).view(b, ctx.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)  # 2×(B, H, M, dh)
        q, k = self.q_norm(q), self.k_norm(k)
        attn_mask = None if mask is None else mask[:, None, None, :]  # (B, 1, 1, M), True = attend
        if torch.is_grad_enabled() and x.device.type == "cpu":
            # PyTorch's CPU flash-attention backward took a third of a training step at 64 tokens;
            # plain matmuls train 2–3× faster here (and SDPA stays faster for sampling)
            scores = (q @ k.transpose(-1, -2)) * (d // h) ** -0.5  # (B, H, N, M)
            if attn_mask is not None:
                scores = scores.masked_fill(~attn_mask, float("-inf"))
            out = scores.softmax(-1) @ v  # (B, H, N, dh)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, H, N, dh)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """adaLN-modulated self-attention, cross-attention to text, and MLP."""

    def __init__(self, cfg: DenoiserConfig):
        super().__init__()
        d = cfg.width
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(d, cfg.heads)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.cross = Attention(d, cfg.heads, context_dim=cfg.text_width)
        self.norm3 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        hidden = int(d * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, d))
        self.modulation = nn.Parameter(torch.randn(6, d) / d**0.5)  # per-block offset to the shared adaLN

    def forward(self, x: torch.Tensor, mod: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = (mod + self.modulation[None]).unbind(1)  # 6×(B, D)
        x = x + gate1[:, None] * self.attn(self.norm1(x) * (1 + scale1[:, None]) + shift1[:, None])
        x = x + self.cross(self.norm2(x), text, text_mask)
        x = x + gate2[:, None] * self.mlp(self.norm3(x) * (1 + scale2[:, None]) + shift2[:, None])
        return x  # (B, N, D)


class Denoiser(nn.Module):
    """f(x_σ, σ, text, glyph) → x̂₀, all images in [-1, 1], shape (B, 3, R, R)."""

    def __init__(self, cfg: DenoiserConfig):
        super().__init__()
        self.cfg = cfg
        d, p = cfg.width, cfg.patch
        self.grid = cfg.resolution // p
        in_dim = (3 + cfg.glyph_channels + cfg.exemplar_channels) * p * p
        self.patch_embed = nn.Sequential(nn.Linear(in_dim, d // 2), nn.Linear(d // 2, d))  # bottleneck (JiT)
        self.register_buffer("pos", sincos_2d(self.grid, d)[None], persistent=False)  # (1, N, D)
        self.t_embed = nn.Sequential(nn.Linear(256, d), nn.SiLU(), nn.Linear(d, d))
        self.text_pool = nn.Sequential(nn.Linear(cfg.text_width, d), nn.SiLU(), nn.Linear(d, d))
        self.adaln = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        # skip i feeds block depth−1−i's input (U-ViT); a zero-initialised projection each
        self.skips = nn.ModuleList(nn.Linear(d, d) for _ in range(cfg.depth // 2 if cfg.long_skips else 0))
        self.final_norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.final_mod = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.head = nn.Linear(d, 3 * p * p)
        self.out_conv = (
            nn.Sequential(
                nn.Conv2d(3, cfg.out_conv, 3, padding=1),
                nn.GELU(approximate="tanh"),
                nn.Conv2d(cfg.out_conv, 3, 3, padding=1),
            )
            if cfg.out_conv
            else None
        )
        self._init()

    def _init(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        zero = [self.adaln[-1], self.final_mod[-1], self.head, *self.skips]  # start as identity-ish blocks
        if self.out_conv is not None:
            zero.append(self.out_conv[-1])
        for lin in zero:
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        if self.cfg.exemplar_channels:  # a new input starts ignored: weights without it load exactly
            first = self.patch_embed[0].weight  # (D/2, C·p²), channel-major columns
            assert isinstance(first, torch.Tensor)
            nn.init.zeros_(first[:, -self.cfg.exemplar_channels * self.cfg.patch**2 :])

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        b, c, _, _ = x.shape
        p, g = self.cfg.patch, self.grid
        x = x.reshape(b, c, g, p, g, p).permute(0, 2, 4, 1, 3, 5)  # (B, g, g, C, p, p)
        return x.reshape(b, g * g, c * p * p)  # (B, N, C·p²)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        p, g = self.cfg.patch, self.grid
        x = x.reshape(b, g, g, 3, p, p).permute(0, 3, 1, 4, 2, 5)  # (B, 3, g, p, g, p)
        return x.reshape(b, 3, g * p, g * p)  # (B, 3, R, R)

    def forward(
        self,
        x: torch.Tensor,
        sigma: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        pooled: torch.Tensor,
        glyph: torch.Tensor | None = None,
        exemplar: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``glyph`` (B, G, R, R) and ``exemplar`` (B, E, R, R) in [0, 1]; None means blank."""
        out_dtype, dt = x.dtype, self.head.weight.dtype  # run in the weights' dtype (bf16 for inference)
        x, text, pooled = x.to(dt), text.to(dt), pooled.to(dt)
        parts = [x]
        for channels, extra in ((self.cfg.glyph_channels, glyph), (self.cfg.exemplar_channels, exemplar)):
            if channels:
                parts.append(x.new_zeros(x.shape[0], channels, *x.shape[2:]) if extra is None else extra.to(dt))
        x_in = torch.cat(parts, dim=1) if len(parts) > 1 else x  # (B, 3+G+E, R, R)
        h = self.patch_embed(self.patchify(x_in)) + self.pos  # (B, N, D)
        c = self.t_embed(timestep_embedding(sigma, 256).to(pooled.dtype)) + self.text_pool(pooled)  # (B, D)
        mod = self.adaln(c).view(-1, 6, self.cfg.width)  # (B, 6, D)
        saved: list[torch.Tensor] = []
        half = len(self.skips)
        for i, block in enumerate(self.blocks):
            if half and i >= len(self.blocks) - half:
                h = h + self.skips[len(self.blocks) - 1 - i](saved.pop())
            h = block(h, mod, text, text_mask)
            if i < half:
                saved.append(h)
        shift, scale = self.final_mod(c).chunk(2, dim=-1)  # 2×(B, D)
        h = self.final_norm(h) * (1 + scale[:, None]) + shift[:, None]
        out = self.unpatchify(self.head(h))  # (B, 3, R, R)
        if self.out_conv is not None:
            out = out + self.out_conv(out)
        return out.to(out_dtype)


def flops_per_image(cfg: DenoiserConfig, text_tokens: int = 24) -> float:
    """Forward multiply-add FLOPs for one image (2 per MAC), matmuls only."""
    n, d, m = cfg.tokens, cfg.width, text_tokens
    per_block = 2 * n * (4 * d * d + 2 * d * d * cfg.mlp_ratio)  # self-attn projections + MLP
    per_block += 2 * (n * d * d * 2 + m * cfg.text_width * 2 * d)  # cross-attn q/proj and k/v
    per_block += 2 * 2 * n * n * d + 2 * 2 * n * m * d  # attention scores and weighted sums
    in_dim = (3 + cfg.glyph_channels + cfg.exemplar_channels) * cfg.patch**2
    io = 2 * n * (in_dim * d // 2 + d // 2 * d + d * 3 * cfg.patch**2)
    skips = 2 * n * d * d * (cfg.depth // 2 if cfg.long_skips else 0)
    conv = 2 * cfg.resolution**2 * 9 * 2 * 3 * cfg.out_conv  # 3 → C → 3 channels, 3×3 kernels
    return cfg.depth * per_block + io + skips + conv
