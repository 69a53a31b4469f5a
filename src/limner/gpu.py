"""Train on a borrowed GPU machine that has PyTorch but no network and no pip index.

``pack`` (here) writes everything a run needs into one folder of at most 64 MiB: the packed
training and validation sets, the text encoder cut down to the vocabulary the captions use
(float16) and the tokenizer. ``run`` (there) trains a preset for a number of minutes and writes
the EMA weights as float16 shards of at most 16 MiB, the history and the last sample grid.
``scripts/train-gpu`` wraps both.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

MAX_SHARD = 15 * 2**20


def pack(corpus: Path, dest: Path, resolution: int = 64) -> dict:
    from safetensors.torch import save_file

    from limner.data.trainset import TrainSet
    from limner.data.trainset import pack as pack_split
    from limner.model.text import TextEncoder, Tokenizer, prune, quantize, wheel_dir

    dest.mkdir(parents=True, exist_ok=True)
    sizes = {}
    captions: list[str] = []
    for split in ("train", "val"):
        path = corpus / f"trainset-{resolution}-{split}.npz"
        if not path.exists():
            pack_split(corpus, path, resolution, split)
        else:
            print(f"reusing {path}", file=sys.stderr)
        shutil.copy(path, dest / path.name)
        captions += [c for caps in TrainSet.load(path).captions for c in caps]
        sizes[path.name] = path.stat().st_size
    tokens = Tokenizer()([*captions, ""])
    sd = prune(TextEncoder.load(), tokens.ids[tokens.mask])
    save_file(quantize(sd), str(dest / "text-encoder.safetensors"))
    shutil.copy(wheel_dir() / "tokenizer.json", dest / "tokenizer.json")
    for name in ("text-encoder.safetensors", "tokenizer.json"):
        sizes[name] = (dest / name).stat().st_size
    sizes["total_mib"] = round(sum(sizes.values()) / 2**20, 2)
    (dest / "pack.json").write_text(json.dumps(sizes, indent=1))
    return sizes


def run(
    pack_dir: Path,
    out: Path,
    preset: str,
    minutes: float,
    batch: int,
    lr: float,
    compile: bool,
    init: str | None = None,
) -> None:
    from limner.model.checkpoint import load_module, save_weights
    from limner.model.denoiser import PRESETS
    from limner.train import TrainConfig, main

    work = Path("/tmp/limner-gpu-run")
    shutil.rmtree(work, ignore_errors=True)
    data = pack_dir / f"trainset-{PRESETS[preset].resolution}-train.npz"
    if not data.exists():
        raise SystemExit(f"{data} is missing: pack at the {preset} preset's resolution")
    cfg = TrainConfig(
        preset=preset,
        data=str(data),
        out=str(work),
        steps=10**9,
        minutes=minutes,
        batch=batch,
        lr=lr,
        warmup=500,
        ema=0.9995,
        sample_every=10**9,
        save_every=3000,
        log_every=200,
        text_encoder=str(pack_dir / "text-encoder.safetensors"),
        tokenizer=str(pack_dir / "tokenizer.json"),
        compile=compile,
        init=init,
    )
    result = main(cfg)
    out.mkdir(parents=True, exist_ok=True)
    ema, meta = load_module(work / "ema.safetensors", "denoiser")
    meta.pop("config", None)
    save_weights(out / "ema.safetensors", ema, "denoiser", meta, max_shard_bytes=MAX_SHARD)
    shutil.copy(work / "history.jsonl", out / "history.jsonl")
    last = sorted((work / "samples").glob("*.png"))[-1]
    shutil.copy(last, out / "samples.png")
    print(json.dumps({"step": result["step"], "val_loss": result["val_loss"]}), file=sys.stderr)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack")
    a.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    a.add_argument("--dest", type=Path, default=Path(".pack"))
    a.add_argument("--resolution", type=int, default=64)
    b = sub.add_parser("run")
    b.add_argument("--pack", type=Path, default=Path(".pack"))
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--preset", default="base")
    b.add_argument("--minutes", type=float, required=True)
    b.add_argument("--batch", type=int, default=512)
    b.add_argument("--lr", type=float, default=5e-4)
    b.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False)
    b.add_argument("--init", default=None)
    args = p.parse_args()
    if args.cmd == "pack":
        print(json.dumps(pack(args.corpus, args.dest, args.resolution), indent=1))
    else:
        torch.set_float32_matmul_precision("high")
        run(
            args.pack,
            args.out,
            args.preset,
            args.minutes,
            args.batch,
            args.lr,
            args.compile,
            args.init,
        )
