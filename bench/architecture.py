"""Measure candidate denoiser shapes on this machine: the bf16 and float32 matmul peaks, then
sampling time for 4 images (CFG doubles the batch to 8) and one training step at batch 64, both
under bf16 autocast.

    python bench/architecture.py            # every candidate
    python bench/architecture.py base base-x
"""

from __future__ import annotations

import sys
import time

import torch

from limner.model.denoiser import PRESETS, Denoiser, DenoiserConfig, flops_per_image

CANDIDATES = {
    "base": PRESETS["base"],
    "base-x": PRESETS["base-x"],
    "xs-x": PRESETS["xs-x"],
    "base p4 (256 tok)": DenoiserConfig(resolution=64, patch=4, width=448, depth=8, heads=7),
    "small": PRESETS["small"],
    "wide w512 d8": DenoiserConfig(resolution=64, patch=8, width=512, depth=8, heads=8),
}


def timed(fn, repeat: int = 5) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat


def matmul_peak(dtype: torch.dtype, n: int = 2048) -> float:
    a = torch.randn(n, n, dtype=dtype)
    return 2 * n**3 / timed(lambda: a @ a, repeat=5)


def main() -> None:
    torch.manual_seed(0)
    print(f"threads {torch.get_num_threads()}")
    print(
        f"2048² matmul: bf16 {matmul_peak(torch.bfloat16) / 1e9:.0f} GFLOP/s, "
        f"float32 {matmul_peak(torch.float32) / 1e9:.0f} GFLOP/s"
    )
    names = sys.argv[1:] or list(CANDIDATES)
    for name in names:
        cfg = CANDIDATES[name]
        model = Denoiser(cfg)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        r = cfg.resolution

        def inputs(b: int, r: int = r, e: int = cfg.exemplar_channels):
            return (
                torch.randn(b, 3, r, r),
                torch.rand(b),
                torch.randn(b, 20, 384),
                torch.ones(b, 20, dtype=torch.bool),
                torch.randn(b, 384),
                torch.zeros(b, 1, r, r),
                torch.zeros(b, e, r, r) if e else None,
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
