"""Engine throughput on this machine, for the default model's own sampling settings ("new": six
steps on a fitted schedule for limner-1, docs/performance.md) and the 20 Euler steps with guidance
on every step that every model had before ("old"), side by side in one run: seconds per call at
batch 1 and 4, images/s under 1, 4 and 8 concurrent callers with and without dynamic batching;
and the achieved FLOP/s of the denoiser as a share of the measured bf16 matmul peak.

    python bench/engine.py [--model limner-1] [--out bench/results/engine.json] [--compile]

Run it on an otherwise idle machine; it prints a Markdown table and writes JSON. The settings are
measured alternately (old, new, old, new …) so that a drift of the shared machine's clock falls
on both.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import torch

from limner.engine import Engine, GenerationRequest, compute
from limner.engine.registry import ModelSpec
from limner.model.denoiser import flops_per_image

ROWS = (1, 2, 4, 8, 16, 32, 64)  # denoiser batch sizes timed: one image with guidance is 2 rows
# the built-in model's sampling before issue 19; "new" is whatever the model's sampling.json says
OLD = {
    "sampler": "euler",
    "num_inference_steps": 20,
    "guidance_interval": [0.0, 1.0],
    "shift": 1.0,
    "guidance_scale": 4.0,
    "tone_guidance": 1.5,
}


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
    per_row = {rows: results[f"denoiser_forward_batch{rows}"]["ms_per_row"] for rows in row_counts}
    if 2 in per_row:
        results["batching_bound"] = round(per_row[2] / min(per_row.values()), 2)
    return results


def median_ms(fn, repeats: int = 20) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(sorted(times)[len(times) // 2] * 1000, 2)


def parts(backend) -> dict:
    """Where one image's time goes with the backend's settings: the text encoder on a prompt (the
    empty negative prompt is kept encoded), each denoiser step with and without guidance, the
    upsampler. Milliseconds, medians."""
    from limner.model.sampling import guided_at

    den, cfg = backend.denoiser, backend.denoiser.cfg
    d = backend.defaults
    sigmas = backend.schedule(d["num_inference_steps"], 1.0, torch.device("cpu"))[:-1].tolist()
    guided = sum(guided_at(s, d["guidance_interval"]) for s in sigmas)

    def step(rows: int):
        x = torch.randn(rows, 3, cfg.resolution, cfg.resolution, dtype=torch.bfloat16)
        text, mask = torch.randn(rows, 48, 384), torch.ones(rows, 48, dtype=torch.bool)
        return lambda: den(x, torch.rand(rows), text, mask, torch.randn(rows, 384))

    prompts = iter(f"a red apple, 3D render, number {i}" for i in range(10_000))
    small = torch.randn(1, 3, cfg.resolution, cfg.resolution, dtype=torch.bfloat16)
    with torch.no_grad():
        out = {
            "text_encoder_one_prompt": median_ms(lambda: backend._encode([next(prompts), ""])),
            "denoiser_step_1_row": median_ms(step(1)),
            "denoiser_step_2_rows": median_ms(step(2)),
            "upsampler": median_ms(lambda: backend.upsampler(small, None)),
        }
    out["steps"], out["guided_steps"] = len(sigmas), guided
    out["denoiser_total"] = round(
        guided * out["denoiser_step_2_rows"] + (len(sigmas) - guided) * out["denoiser_step_1_row"], 1
    )
    return out


def one_call(engine: Engine, model: str, n: int, seed: int) -> float:
    """Seconds for one request of ``n`` images, with a prompt the engine has not encoded before."""
    t = time.perf_counter()
    engine.generate(GenerationRequest(f"a red apple, 3D render, take {seed} of {n}", n=n, seed=seed, model=model))
    return time.perf_counter() - t


def one_caller(engine: Engine, models: tuple[str, str], requests: int) -> tuple[float, float]:
    """Images per second of one caller making single-image requests one after another, for two
    models, their requests interleaved (a, b, a, b …) so that a drift of the machine's speed
    falls on both alike."""
    spent = [0.0, 0.0]
    for i in range(requests):
        for m, model in enumerate(models):
            t = time.perf_counter()
            engine.generate(GenerationRequest(f"prompt {i}: a rocket", seed=i, model=model))
            spent[m] += time.perf_counter() - t
    return requests / spent[0], requests / spent[1]


def callers(engine: Engine, model: str, k: int, per_caller: int) -> float:
    """Images per second when ``k`` threads each make ``per_caller`` single-image requests."""

    def work(i: int) -> None:
        for j in range(per_caller):
            engine.generate(GenerationRequest(f"prompt {i} {j}: a rocket", seed=i * 100 + j, model=model))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(k)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return k * per_caller / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=None, help="a shipped model's name or a weights folder (default: the default)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("bench/results/engine.json"))
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the denoiser for its FLOP/s rows (not what the engine runs: docs/performance.md)",
    )
    args = p.parse_args()

    from limner.eval.instruments import machine_name

    # every torch op runs on the engine's compute thread, as the engine's own work does: a second
    # OpenMP team in the process would slow every step (limner/engine/compute.py)
    peak = compute.run(measure_peak)
    results: dict = {"machine": machine_name(), "measured_bf16_peak_gflops": round(peak / 1e9)}
    listing = Engine(batching=False)
    base = listing.specs[listing.resolve_name(args.model)]
    specs = [ModelSpec("old", base.backend, base.path, base.options, {**base.defaults, **OLD}), base]
    plain = Engine(specs=specs, batching=False)
    batched = Engine(specs=specs, batching=True, window_ms=30, max_batch_images=8)
    new = base.name
    results["model"] = new
    results["settings"] = {"old": plain.backend("old").info().defaults, "new": plain.backend(new).info().defaults}
    results["settings"]["new"]["sigmas"] = list(getattr(plain.backend(new), "defaults", {}).get("sigmas", ()))
    for model in ("old", new):
        one_call(plain, model, 1, 99)  # warm-up
        batched.generate(GenerationRequest("warm-up", seed=0, model=model))
    calls: dict = {m: {1: [], 4: []} for m in ("old", new)}
    for r in range(args.repeats):
        for n in (1, 4):
            for model in ("old", new):
                calls[model][n].append(one_call(plain, model, n, r))
    # images/s: the best of ``repeats`` rounds, old and new alternating within each round
    rates: dict = {(m, k, mode): [] for m in ("old", new) for k in (1, 4, 8) for mode in ("without", "with")}
    for _ in range(args.repeats):
        for k in (1, 4, 8):
            for model in ("old", new):
                rates[model, k, "without"].append(callers(plain, model, k, 4))
                rates[model, k, "with"].append(callers(batched, model, k, 4))
    throughput: dict = {
        m: {
            k: {f"{mode}_batching": round(max(rates[m, k, mode]), 3) for mode in ("without", "with")} for k in (1, 4, 8)
        }
        for m in ("old", new)
    }
    # one caller again, its old and new requests interleaved: the ratio that drift cannot tilt
    for mode, engine in (("without", plain), ("with", batched)):
        a, b = one_caller(engine, ("old", new), 8 * args.repeats)
        throughput["old"][1][f"{mode}_batching_interleaved"] = round(a, 3)
        throughput[new][1][f"{mode}_batching_interleaved"] = round(b, 3)
    batched.close()
    for model, key in (("old", "old"), (new, "new")):
        row: dict = {}
        for n in (1, 4):
            best = min(calls[model][n])
            row[f"batch{n}"] = {"seconds_per_call": round(best, 3), "seconds_per_image": round(best / n, 3)}
        row["concurrency"] = throughput[model]
        row["batching_gain_8_vs_1"] = round(
            throughput[model][8]["with_batching"] / throughput[model][1]["with_batching"], 2
        )
        results[key] = row
    old, fast = results["old"], results["new"]
    results["speed-up"] = {
        "one_caller_images_per_second": round(
            fast["concurrency"][1]["without_batching"] / old["concurrency"][1]["without_batching"], 2
        ),
        "one_caller_interleaved": round(
            fast["concurrency"][1]["without_batching_interleaved"]
            / old["concurrency"][1]["without_batching_interleaved"],
            2,
        ),
        "four_images_one_call": round(old["batch4"]["seconds_per_call"] / fast["batch4"]["seconds_per_call"], 2),
        "eight_callers_with_batching": round(
            fast["concurrency"][8]["with_batching"] / old["concurrency"][8]["with_batching"], 2
        ),
    }

    results["where_the_time_goes_ms"] = {
        "old": compute.run(parts, plain.backend("old")),
        "new": compute.run(parts, plain.backend(new)),
    }
    den = plain.backend(new).denoiser
    if args.compile:
        # the plain network (the engine's layers check batch invariance in Python, which compiling
        # cannot follow); one compilation with a symbolic batch size serves every row count
        import torch._inductor.config

        from limner.model.checkpoint import load_denoiser

        torch._inductor.config.freezing = True
        plain_den, _ = load_denoiser(base.path / "denoiser.safetensors")
        den = torch.compile(plain_den.to(torch.bfloat16).eval(), dynamic=True)
        t = time.perf_counter()
        compute.run(denoiser_rates, den, peak, (2,))
        results["compile_seconds"] = round(time.perf_counter() - t, 1)
    results.update(compute.run(denoiser_rates, den, peak))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    settings = results["settings"]
    print(f"## Engine benchmark — {results['machine']}, model {new}\n")
    print(f"measured bf16 matmul peak: {results['measured_bf16_peak_gflops']} GFLOP/s\n")
    print(f"old settings: {settings['old']}\nnew settings: {settings['new']}\n")
    print("| measure | old | new | new ÷ old |\n|---|---|---|---|")
    for n in (1, 4):
        a, b = old[f"batch{n}"]["seconds_per_call"], fast[f"batch{n}"]["seconds_per_call"]
        print(f"| seconds for {n} image{'s' if n > 1 else ''} in one call | {a} | {b} | {a / b:.2f}× faster |")
    for k in (1, 4, 8):
        interleaved = ("without_batching_interleaved", "with_batching_interleaved") if k == 1 else ()
        for mode in ("without_batching", "with_batching", *interleaved):
            a, b = old["concurrency"][k][mode], fast["concurrency"][k][mode]
            print(f"| {k} caller{'s' if k > 1 else ''}, images/s {mode.replace('_', ' ')} | {a} | {b} | {b / a:.2f}× |")
    print(f"| batching gain, 8 callers vs 1 | {old['batching_gain_8_vs_1']}× | {fast['batching_gain_8_vs_1']}× | |")
    print("\n| denoiser rows per call | ms per row | GFLOP/s | share of measured peak |\n|---|---|---|---|")
    for rows in ROWS:
        r = results[f"denoiser_forward_batch{rows}"]
        print(f"| {rows} | {r['ms_per_row']} | {r['gflops']} | {r['share_of_measured_peak']:.0%} |")
    print("\n| one image, ms | old | new |\n|---|---|---|")
    where = results["where_the_time_goes_ms"]
    for part in where["new"]:
        print(f"| {part} | {where['old'][part]} | {where['new'][part]} |")
    print(f"\nmost merging can gain (per-row time at 2 rows / at the best batch): {results['batching_bound']}×")


if __name__ == "__main__":
    main()
