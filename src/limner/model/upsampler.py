"""The learned ×4 upsampler: 64×64 base image (+ 256×256 glyph canvas) → 256×256.

A residual convolutional network that works at the low resolution and ends in a pixel shuffle
(ESPCN, Shi et al. 2016; EDSR blocks, Lim et al. 2017). It predicts a correction to the bicubic
upscale. The glyph canvas enters at full resolution through a space-to-depth fold, so letters
can be drawn sharper than the 64×64 base could ever hold them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class UpsamplerConfig:
    factor: int = 4
    channels: int = 64
    blocks: int = 8
    glyph_channels: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


UPSAMPLER_PRESETS: dict[str, UpsamplerConfig] = {
    "tiny": UpsamplerConfig(channels=8, blocks=1),
    "small": UpsamplerConfig(channels=48, blocks=6),
    "base": UpsamplerConfig(channels=64, blocks=8),
}


class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.conv2(F.silu(self.conv1(x)))


class Upsampler(nn.Module):
    """(B, 3, r, r) in [-1, 1] (+ glyph (B, G, 4r, 4r) in [0, 1]) → (B, 3, 4r, 4r) in [-1, 1]."""

    def __init__(self, cfg: UpsamplerConfig):
        super().__init__()
        self.cfg = cfg
        f, c = cfg.factor, cfg.channels
        self.stem = nn.Conv2d(3 + cfg.glyph_channels * f * f, c, 3, padding=1)
        self.body = nn.Sequential(*(ResBlock(c) for _ in range(cfg.blocks)))
        self.tail = nn.Conv2d(c, 3 * f * f, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)  # type: ignore[arg-type]

    def forward(self, low: torch.Tensor, glyph: torch.Tensor | None = None) -> torch.Tensor:
        f = self.cfg.factor
        out_dtype = low.dtype
        low = low.to(self.stem.weight.dtype)  # run in the weights' dtype (bf16 for inference)
        parts = [low]
        if self.cfg.glyph_channels:
            if glyph is None:
                glyph = low.new_zeros(low.shape[0], self.cfg.glyph_channels, low.shape[2] * f, low.shape[3] * f)
            parts.append(F.pixel_unshuffle(glyph.to(low.dtype), f))  # (B, G·f², r, r)
        h = self.stem(torch.cat(parts, dim=1))  # (B, C, r, r)
        h = h + self.body(h)
        residual = F.pixel_shuffle(self.tail(h), f)  # (B, 3, f·r, f·r)
        base = F.interpolate(low, scale_factor=f, mode="bicubic", align_corners=False)
        return (base + residual).clamp(-1, 1).to(out_dtype)
