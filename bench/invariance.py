"""What batch invariance costs: 4 images of the shipped model in one call, 20 steps, with the
per-sample fallback of limner.model.invariance (``invariant``) and with every layer forced to run
batched (``plain``: faster only where a kernel changes with the batch, and then off in the last
bit). Run the two modes alternately, twice, and compare the minima.

    python bench/invariance.py plain; python bench/invariance.py invariant
"""

from __future__ import annotations

import sys
import time

from limner.engine import Engine, GenerationRequest
from limner.model import invariance


def main(mode: str) -> None:
    if mode == "plain":
        invariance._batching_changes_samples = lambda *a: False  # type: ignore[assignment]
    engine = Engine(batching=False)

    def request() -> GenerationRequest:
        return GenerationRequest("a red apple, 3D render", n=4, seed=1, num_inference_steps=20)

    engine.generate(request())  # warm-up: loads, probes each shape once
    times = []
    for _ in range(3):
        t = time.perf_counter()
        engine.generate(request())
        times.append(time.perf_counter() - t)
    print(f"{mode}: 4 images {', '.join(f'{t:.2f}' for t in times)} s, best {min(times):.2f} s")
    split = sorted({(k[1], k[3][0]) for k, v in invariance._verdicts.items() if v})
    print(f"layers run sample by sample (weight shape, batch): {split}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "invariant")
