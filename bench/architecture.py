"""Measure candidate denoiser shapes on this machine: sampling time for 4 images (CFG doubles the
batch to 8) and one training step at batch 64, both under bf16 autocast.

    python bench/architecture.py
"""

from __future__ import annotations

import time

import torch

from limner.model.denoiser import Denoiser, DenoiserConfig, flops_per_image

CANDIDATES = {
    "base p8 (64 tok) w448 d8": DenoiserConfig(resolution=64, patch=8, width=448, depth=8, heads=7),
    "base p4 (256 tok) w448 d8": DenoiserConfig(resolution=64, patch=4, width=448, depth=8, heads=7),
    "small p8 (64 tok) w384 d8": DenoiserConfig(resolution=64, patch=8, width=384, depth=8, heads=6),
    "wide p8 (64 tok) w512 d8": DenoiserConfig(resolution=64, patch=8, width=512, depth=8, heads=8),
}


def timed(fn, repeat: int = 5) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat


def main() -> None:
    torch.manual_seed(0)
    print(f"threads {torch.get_num_threads()}")
    for name, cfg in CANDIDATES.items():
        model = Denoiser(cfg)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        r = cfg.resolution

        def inputs(b: int, r: int = r):
            return (
                torch.randn(b, 3, r, r),
                torch.rand(b),
                torch.randn(b, 20, 384),
                torch.ones(b, 20, dtype=torch.bool),
                torch.randn(b, 384),
                torch.zeros(b, 1, r, r),
            )

        x8 = inputs(8)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            fwd = timed(lambda model=model, x8=x8: model(*x8))
        x64 = inputs(64)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step(model=model, x64=x64, opt=opt):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = model(*x64).float().pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

        train = timed(step, repeat=3)
        f = flops_per_image(cfg, 20)
        print(
            f"{name}: {params:.1f} M params | forward b=8 {fwd * 1000:.0f} ms "
            f"({8 * f / fwd / 1e9:.0f} GFLOP/s) → 20 steps {20 * fwd:.2f} s | "
            f"train step b=64 {train:.2f} s ({3 * 64 * f / train / 1e9:.0f} GFLOP/s)"
        )


if __name__ == "__main__":
    main()
