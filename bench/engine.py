"""Engine throughput on this machine: seconds per image at batch 1 and 4, images/s under 1, 4
and 8 concurrent callers with and without dynamic batching, and the achieved FLOP/s of the
denoiser as a share of the measured bf16 matmul peak.

    python bench/engine.py [--model limner-1] [--steps 20] [--out bench/results/engine.json]

Run it on an otherwise idle machine; it prints a Markdown table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import torch

from limner.engine import Engine, GenerationRequest, compute
from limner.model.denoiser import flops_per_image

PEAK_BF16 = 2.19e12  # measured 2048² bf16 matmul on the development CPU (../shared/DESIGN.md)


def measure_peak(n: int = 2048, repeats: int = 10) -> float:
    a = torch.randn(n, n, dtype=torch.bfloat16)
    b = torch.randn(n, n, dtype=torch.bfloat16)
    a @ b
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t)


def denoiser_rates(den, peak: float) -> dict:
    """Achieved FLOP/s of the denoiser alone: 4 images with guidance = 8 rows per step, then 32
    and 64 rows."""
    results: dict = {}
    cfg = den.cfg
    x = torch.randn(8, 3, cfg.resolution, cfg.resolution)
    text = torch.randn(8, 48, 384)
    mask = torch.ones(8, 48, dtype=torch.bool)
    pooled = torch.randn(8, 384)
    with torch.no_grad():
        den(x, torch.rand(8), text, mask, pooled)
        t = time.perf_counter()
        for _ in range(10):
            den(x, torch.rand(8), text, mask, pooled)
        dt = (time.perf_counter() - t) / 10
    flops = 8 * flops_per_image(cfg, 48)
    results["denoiser_forward_batch8"] = {
        "seconds": round(dt, 4),
        "gflops": round(flops / dt / 1e9),
        "share_of_measured_peak": round(flops / dt / peak, 3),
        "share_of_design_peak": round(flops / dt / PEAK_BF16, 3),
    }
    for big in (32, 64):
        xb, tb, mb, pb = (v.repeat(big // 8, *[1] * (v.dim() - 1)) for v in (x, text, mask, pooled))
        with torch.no_grad():
            den(xb, torch.rand(big), tb, mb, pb)
            t = time.perf_counter()
            for _ in range(5):
                den(xb, torch.rand(big), tb, mb, pb)
            dt = (time.perf_counter() - t) / 5
        f = big * flops_per_image(cfg, 48)
        results[f"denoiser_forward_batch{big}"] = {
            "seconds": round(dt, 4),
            "gflops": round(f / dt / 1e9),
            "share_of_measured_peak": round(f / dt / peak, 3),
        }
    return results


def one_call(engine: Engine, model: str | None, n: int, steps: int, seed: int) -> float:
    t = time.perf_counter()
    engine.generate(GenerationRequest("a red apple, 3D render", n=n, seed=seed, model=model, num_inference_steps=steps))
    return time.perf_counter() - t


def callers(engine: Engine, model: str | None, k: int, per_caller: int, steps: int) -> float:
    """Images per second when ``k`` threads each make ``per_caller`` single-image requests."""

    def work(i: int) -> None:
        for j in range(per_caller):
            engine.generate(
                GenerationRequest(f"prompt {i} {j}: a rocket", seed=i * 100 + j, model=model, num_inference_steps=steps)
            )

    threads = [threading.Thread(target=work, args=(i,)) for i in range(k)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return k * per_caller / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=None)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("bench/results/engine.json"))
    args = p.parse_args()

    from limner.eval.run import machine_name

    # every torch op runs on the engine's compute thread, as the engine's own work does: a second
    # OpenMP team in the process would slow every step (limner/engine/compute.py)
    peak = compute.run(measure_peak)
    results: dict = {
        "machine": machine_name(),
        "measured_bf16_peak_gflops": round(peak / 1e9),
        "steps": args.steps,
    }
    plain = Engine(batching=False)
    backend = plain.backend(args.model)
    model = backend.name
    results["model"] = model
    one_call(plain, model, 1, args.steps, 0)  # warm-up
    for n in (1, 4):
        times = [one_call(plain, model, n, args.steps, r) for r in range(args.repeats)]
        best = min(times)
        results[f"batch{n}"] = {"seconds_per_call": round(best, 3), "seconds_per_image": round(best / n, 3)}

    results.update(compute.run(denoiser_rates, backend.denoiser, peak))

    batched = Engine(batching=True, window_ms=30, max_batch_images=8)
    batched.generate(GenerationRequest("warm-up", seed=0, model=model, num_inference_steps=args.steps))
    results["concurrency"] = {}
    for k in (1, 4, 8):
        results["concurrency"][k] = {
            "without_batching": round(callers(plain, model, k, 2, args.steps), 3),
            "with_batching": round(callers(batched, model, k, 2, args.steps), 3),
        }
    batched.close()
    c = results["concurrency"]
    results["batching_gain_8_vs_1"] = round(c[8]["with_batching"] / c[1]["with_batching"], 2)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"## Engine benchmark — {results['machine']}, model {model}, {args.steps} steps\n")
    print(f"measured bf16 matmul peak: {results['measured_bf16_peak_gflops']} GFLOP/s\n")
    print("| measure | value |\n|---|---|")
    for n in (1, 4):
        r = results[f"batch{n}"]
        print(f"| batch {n}: seconds per call / per image | {r['seconds_per_call']} / {r['seconds_per_image']} |")
    for key in ("denoiser_forward_batch8", "denoiser_forward_batch32", "denoiser_forward_batch64"):
        r = results[key]
        print(f"| {key}: GFLOP/s (share of measured peak) | {r['gflops']} ({r['share_of_measured_peak']:.0%}) |")
    for k, r in c.items():
        print(f"| {k} callers: images/s without / with batching | {r['without_batching']} / {r['with_batching']} |")
    print(f"| batching gain, 8 callers vs 1 | {results['batching_gain_8_vs_1']}× |")


if __name__ == "__main__":
    main()
