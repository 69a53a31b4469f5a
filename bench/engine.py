"""Engine throughput on this machine: seconds per image at batch 1 and 4, images/s under 1, 4
and 8 concurrent callers with and without dynamic batching, and the achieved FLOP/s of the
denoiser as a share of the measured bf16 matmul peak.

    python bench/engine.py [--model limner-1] [--steps 20] [--out bench/results/engine.json] [--compile]

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

ROWS = (2, 4, 8, 16, 32, 64)  # denoiser batch sizes timed: one image with guidance is 2 rows


def measure_peak(n: int = 2048, repeats: int = 10) -> float:
    a = torch.randn(n, n, dtype=torch.bfloat16)
    b = torch.randn(n, n, dtype=torch.bfloat16)
    a @ b
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t)


def denoiser_rates(den, peak: float, row_counts: tuple[int, ...] = ROWS) -> dict:
    """Achieved FLOP/s of the denoiser alone at 2 to 64 rows per step (one image with guidance
    is 2 rows; the batcher's eight is 16). The per-row time at 2 rows over the best per-row time
    bounds what merging requests can gain."""
    results: dict = {}
    cfg = den.cfg
    for rows in row_counts:
        x = torch.randn(rows, 3, cfg.resolution, cfg.resolution)
        text = torch.randn(rows, 48, 384)
        mask = torch.ones(rows, 48, dtype=torch.bool)
        pooled = torch.randn(rows, 384)
        repeats = max(3, 64 // rows)
        with torch.no_grad():
            den(x, torch.rand(rows), text, mask, pooled)
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                den(x, torch.rand(rows), text, mask, pooled)
                times.append(time.perf_counter() - t)
        dt = sorted(times)[len(times) // 2]
        flops = rows * flops_per_image(cfg, 48)
        results[f"denoiser_forward_batch{rows}"] = {
            "seconds": round(dt, 4),
            "ms_per_row": round(dt / rows * 1000, 2),
            "gflops": round(flops / dt / 1e9),
            "share_of_measured_peak": round(flops / dt / peak, 3),
        }
    per_row = [r["ms_per_row"] for r in results.values()]
    results["batching_bound"] = round(per_row[0] / min(per_row), 2)
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
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the denoiser for its FLOP/s rows (not the engine's)"
    )
    args = p.parse_args()

    from limner.eval.instruments import machine_name

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

    den = backend.denoiser
    if args.compile:  # one compilation with a symbolic batch size serves every row count
        import torch._inductor.config

        torch._inductor.config.freezing = True
        den = torch.compile(den, dynamic=True)
        t = time.perf_counter()
        compute.run(denoiser_rates, den, peak, (2,))
        results["compile_seconds"] = round(time.perf_counter() - t, 1)
    results.update(compute.run(denoiser_rates, den, peak))

    batched = Engine(batching=True, window_ms=30, max_batch_images=8)
    batched.generate(GenerationRequest("warm-up", seed=0, model=model, num_inference_steps=args.steps))
    results["concurrency"] = {}
    for k in (1, 4, 8):
        results["concurrency"][k] = {
            "without_batching": round(callers(plain, model, k, 4, args.steps), 3),
            "with_batching": round(callers(batched, model, k, 4, args.steps), 3),
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
    for rows in ROWS:
        r = results[f"denoiser_forward_batch{rows}"]
        print(
            f"| denoiser, {rows} rows: ms per row, GFLOP/s (share of measured peak) "
            f"| {r['ms_per_row']}, {r['gflops']} ({r['share_of_measured_peak']:.0%}) |"
        )
    print(f"| most merging can gain (per-row time at 2 rows / at the best batch) | {results['batching_bound']}× |")
    for k, r in c.items():
        print(f"| {k} callers: images/s without / with batching | {r['without_batching']} / {r['with_batching']} |")
    print(f"| batching gain, 8 callers vs 1 | {results['batching_gain_8_vs_1']}× |")


if __name__ == "__main__":
    main()
