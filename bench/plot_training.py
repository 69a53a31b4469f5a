"""Learning curves of the shipped model's training runs, one after the other, as one PNG.

    python bench/plot_training.py runs/gpu-2/history.jsonl runs/base-cpu/history.jsonl \
        --upsampler runs/upsampler/checkpoint.pt --out weights/limner-1/learning-curve.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("histories", nargs="+", type=Path, help="history.jsonl of each run, in training order")
    p.add_argument("--upsampler", type=Path, default=None, help="the upsampler run's checkpoint.pt")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()

    panels = 3 if args.upsampler else 2
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.6))
    offset = 0
    for path in args.histories:
        rows = read(path)
        name = path.parent.name
        seen = [(r["step"] + offset, r["loss"]) for r in rows if "loss" in r]
        val = [(r["step"] + offset, r["val_loss"]) for r in rows if r.get("val_loss") is not None]
        if seen:
            axes[0].plot(*zip(*seen, strict=True), label=f"{name} (training batches)")
        if val:
            axes[1].plot(*zip(*val, strict=True), "o-", label=f"{name} (fixed validation batch)")
        steps = [r["step"] for r in rows if "step" in r]
        offset += max(steps) if steps else 0
    axes[0].set_title("denoiser training loss")
    axes[1].set_title("denoiser validation loss")
    for ax in axes[:2]:
        ax.set_xlabel("optimizer steps (runs in sequence)")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    if args.upsampler:
        import torch

        hist = torch.load(args.upsampler, map_location="cpu", weights_only=False)["history"]
        steps = [h["step"] for h in hist if "val_l1" in h]
        axes[2].plot(steps, [h["val_l1"] for h in hist if "val_l1" in h], "o-", label="learned upsampler")
        axes[2].plot(steps, [h["bicubic_l1"] for h in hist if "val_l1" in h], "--", label="bicubic")
        axes[2].set_title("upsampler: validation L1 (lower is better)")
        axes[2].set_xlabel("steps")
        axes[2].legend(fontsize=7)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    print(args.out)


if __name__ == "__main__":
    main()
