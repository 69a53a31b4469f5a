"""Train the ×4 upsampler on corpus images: box-downsampled (and lightly degraded, so it copes
with the denoiser's imperfect output) 64×64 inputs → the 256×256 originals, L1 loss, random crops.

    limner train-upsampler --data data/corpus --out runs/upsampler --minutes 60
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from limner.data.shards import iter_records, shard_paths
from limner.model.checkpoint import save_atomic, save_weights
from limner.model.upsampler import UPSAMPLER_PRESETS, Upsampler


@dataclass
class UpsamplerTrainConfig:
    preset: str = "base"
    data: str = "data/corpus"
    out: str = "runs/upsampler"
    steps: int = 20_000
    minutes: float | None = None
    batch: int = 32
    crop: int = 128  # high-resolution crop side; the input is crop / 4
    lr: float = 3e-4
    max_images: int = 12_000
    min_native: int = 200  # skip sources whose originals are smaller than this (they'd teach blur)
    glyph_dropout: float = 0.25
    save_every: int = 500
    seed: int = 0
    resume: bool = False


def load_images(cfg: UpsamplerTrainConfig, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 images (N, 3, S, S), glyphs (N, 1, S, S) (zeros where none) and has_glyph (N,)."""
    paths = shard_paths(Path(cfg.data), split) + shard_paths(Path(cfg.data), split, "typography")
    rng = random.Random(cfg.seed)
    records = [r for r in iter_records(paths) if r.meta.get("native_resolution", 10**6) >= cfg.min_native]
    rng.shuffle(records)
    records = records[: cfg.max_images]
    imgs, glyphs, has = [], [], []
    for r in records:
        imgs.append(np.asarray(r.image()))
        g = r.glyph()
        has.append(g is not None)
        glyphs.append(np.asarray(g) if g is not None else np.zeros(imgs[-1].shape[:2], np.uint8))
    return (
        torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous(),
        torch.from_numpy(np.stack(glyphs))[:, None].contiguous(),
        torch.tensor(has),
    )


def degrade(low: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random mild blur and noise on the low-resolution input."""
    b = low.shape[0]
    blur = torch.rand(b, generator=gen) < 0.5
    if blur.any():
        k = torch.tensor([1.0, 2.0, 1.0])
        k = (k[:, None] * k[None]) / 16
        w = k.expand(3, 1, 3, 3).to(low)
        blurred = F.conv2d(F.pad(low, (1, 1, 1, 1), mode="replicate"), w, groups=3)
        low = torch.where(blur[:, None, None, None], blurred, low)
    sigma = torch.rand(b, 1, 1, 1, generator=gen) * 0.04
    return low + sigma * torch.randn(low.shape, generator=gen)


def batch_of(
    images: torch.Tensor,
    glyphs: torch.Tensor,
    has: torch.Tensor,
    cfg: UpsamplerTrainConfig,
    gen: torch.Generator,
    fixed: bool = False,
):
    n, _, s, _ = images.shape
    idx = torch.randint(n, (cfg.batch,), generator=gen)
    c = cfg.crop
    # crops on a 4-pixel grid so the box-downsampled input lines up with the target
    ys = torch.randint(0, (s - c) // 4 + 1, (cfg.batch,), generator=gen) * 4
    xs = torch.randint(0, (s - c) // 4 + 1, (cfg.batch,), generator=gen) * 4
    hi = torch.stack([images[i, :, y : y + c, x : x + c] for i, y, x in zip(idx, ys, xs, strict=True)])
    gl = torch.stack([glyphs[i, :, y : y + c, x : x + c] for i, y, x in zip(idx, ys, xs, strict=True)])
    hi = hi.float() / 127.5 - 1  # (B, 3, c, c)
    gl = gl.float() / 255  # (B, 1, c, c)
    keep = has[idx] & (torch.rand(cfg.batch, generator=gen) >= (0 if fixed else cfg.glyph_dropout))
    gl = gl * keep[:, None, None, None]
    low = F.avg_pool2d(hi, 4)  # (B, 3, c/4, c/4)
    if not fixed:
        low = degrade(low, gen)
    return low, gl, hi


def main(cfg: UpsamplerTrainConfig) -> dict:
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    images, glyphs, has = load_images(cfg, "train")
    v_images, v_glyphs, v_has = load_images(UpsamplerTrainConfig(**{**asdict(cfg), "max_images": 256}), "val")
    print(f"{len(images)} training images ({int(has.sum())} with glyphs)", file=sys.stderr)
    model = Upsampler(UPSAMPLER_PRESETS[cfg.preset])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(cfg.seed)
    step, history, elapsed_before = 0, [], 0.0
    ckpt = out / "checkpoint.pt"
    if cfg.resume and ckpt.exists():
        st = torch.load(ckpt, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        step, history, elapsed_before = st["step"], st["history"], st["elapsed"]
        gen.set_state(st["generator"])
    vgen = torch.Generator().manual_seed(99)
    vcfg = UpsamplerTrainConfig(**{**asdict(cfg), "batch": 64})
    v_low, v_gl, v_hi = batch_of(v_images, v_glyphs, v_has, vcfg, vgen, fixed=True)

    def evaluate() -> dict:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            pred = model(v_low, v_gl).float()
        bicubic = F.interpolate(v_low, scale_factor=4, mode="bicubic", align_corners=False).clamp(-1, 1)
        return {
            "val_l1": float((pred - v_hi).abs().mean()),
            "bicubic_l1": float((bicubic - v_hi).abs().mean()),
        }

    started = time.time()
    budget = cfg.minutes * 60 if cfg.minutes else float("inf")
    while step < cfg.steps and time.time() - started < budget:
        low, gl, hi = batch_of(images, glyphs, has, cfg, gen)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            pred = model(low, gl)
        loss = (pred.float() - hi).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 50 == 0:
            print(
                f"step {step} l1 {loss.item():.4f} ({(time.time() - started) / 60:.1f} min)",
                file=sys.stderr,
                flush=True,
            )
        if step % cfg.save_every == 0:
            history.append({"step": step, "loss": loss.item(), **evaluate()})
            print(history[-1], file=sys.stderr)
            _save(model, opt, gen, step, history, elapsed_before + time.time() - started, cfg, out)
    history.append({"step": step, **evaluate()})
    _save(model, opt, gen, step, history, elapsed_before + time.time() - started, cfg, out)
    return history[-1]


def _save(model, opt, gen, step, history, elapsed, cfg, out: Path) -> None:
    save_atomic(
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "step": step,
            "history": history,
            "elapsed": elapsed,
            "generator": gen.get_state(),
            "config": asdict(cfg),
        },
        out / "checkpoint.pt",
    )
    save_weights(
        out / "upsampler.safetensors",
        model,
        "upsampler",
        {
            "steps": step,
            "train_seconds": round(elapsed),
            **{k: v for k, v in history[-1].items() if k != "step"},
        },
    )
