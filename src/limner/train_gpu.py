"""Train on a borrowed GPU machine that has PyTorch but no network and no pip index.

``pack`` (here) writes everything a run needs into one folder: the packed training and
validation sets (composites and exemplar thumbnails), the text encoder cut down to the vocabulary
the captions use (int8) and its tokenizer, and optionally the weights to start from (int8). It refuses to write more than ``limit`` bytes: the pack travels with
the repository's tracked files, and the two together must stay under the machine's 64 MiB.

``run`` (there) trains to the clock with everything resident on the GPU: images as uint8 (flips,
glyph and caption dropout, exemplar picking and jitter drawn there), captions and exemplar keys
encoded once, fixed shapes, ``torch.compile``, a short probe that
picks the batch size, no host synchronisation between log lines. It writes the EMA weights as
float16 shards of at most 16 MiB, the history, the last sample grid and a summary (images seen,
images/s, MFU). ``scripts/train-gpu`` wraps both.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

MAX_SHARD = 15 * 2**20
PACK_LIMIT = 56 * 2**20  # 64 MiB less the repository's tracked files without its weights (≈ 7 MiB)


def _for_travel(src: Path, dest: Path) -> None:
    """A packed trainset made small: composites kept, foregrounds replaced by their exemplar
    thumbnails (a WebP atlas), everything zip-compressed. RGBA foregrounds cost 45 % more than
    composites at the same WebP quality; the GPU needs only the composites and the thumbnails."""
    from limner.data.exemplars import thumbnails, to_atlas
    from limner.data.trainset import TrainSet

    with np.load(src) as z:
        if "fg" not in z.files or "images" not in z.files:
            raise SystemExit(f"{src} lacks composites or foregrounds: delete it and pack again")
        keep = {k: z[k] for k in z.files if k not in ("fg", "fg_offsets")}
    atlas = to_atlas(thumbnails(TrainSet.load(src).rgba).numpy(), quality=80)  # type: ignore[arg-type]
    np.savez_compressed(dest, **keep, thumbs_atlas=np.frombuffer(atlas, dtype=np.uint8))


def pack(corpus: Path, dest: Path, resolution: int = 64, init: Path | None = None, limit: int = PACK_LIMIT) -> dict:
    from safetensors.torch import save_file

    from limner.data.trainset import TrainSet, version_of
    from limner.data.trainset import pack as pack_split
    from limner.model.checkpoint import load_denoiser, quantize_int8, save_int8
    from limner.model.text import TextEncoder, Tokenizer, prune, wheel_dir

    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    sizes: dict[str, float] = {}
    captions: list[str] = []
    for split in ("train", "val"):
        name = f"trainset-{resolution}-{split}.npz"
        cached = corpus / name
        if cached.exists() and version_of(cached) >= 2:
            print(f"reusing {cached}", file=sys.stderr)
        else:
            cached = pack_split(corpus, dest / f"full-{name}", resolution, split)
        _for_travel(cached, dest / name)
        if cached.parent == dest:
            cached.unlink()
        captions += [c for caps in TrainSet.load(dest / name).captions for c in caps]
    tokens = Tokenizer()([*captions, ""])
    sd = prune(TextEncoder.load(), tokens.ids[tokens.mask])
    save_file(quantize_int8(sd, only=("layers.", "word.")), str(dest / "text-encoder.safetensors"))
    shutil.copy(wheel_dir() / "tokenizer.json", dest / "tokenizer.json")
    if init is not None:
        model, meta = load_denoiser(init)
        save_int8(dest / "init.safetensors", model, "denoiser", {k: v for k, v in meta.items() if k != "config"})
    for f in sorted(dest.iterdir()):
        sizes[f.name] = f.stat().st_size
    total = sum(sizes.values())
    sizes["total_mib"] = round(total / 2**20, 2)
    (dest / "pack.json").write_text(json.dumps(sizes, indent=1))
    if total > limit:
        raise SystemExit(f"the pack is {total / 2**20:.1f} MiB, over the {limit / 2**20:.0f} MiB that may travel")
    return sizes


def run(
    pack_dir: Path,
    out: Path,
    preset: str,
    minutes: float,
    batch: int,
    lr: float,
    compile: bool,
    batch_probe: str = "",
    init: str | None = None,
    work: Path = Path("/tmp/limner-gpu-run"),
) -> dict:
    from limner.model.checkpoint import load_module, save_weights
    from limner.model.denoiser import PRESETS
    from limner.train import TrainConfig, main

    shutil.rmtree(work, ignore_errors=True)
    data = pack_dir / f"trainset-{PRESETS[preset].resolution}-train.npz"
    if not data.exists():
        raise SystemExit(f"{data} is missing: pack at the {preset} preset's resolution")
    if init is None and (pack_dir / "init.safetensors").exists():
        init = str(pack_dir / "init.safetensors")
    cfg = TrainConfig(
        preset=preset,
        data=str(data),
        out=str(work),
        steps=10**9,
        minutes=minutes,
        batch=batch,
        lr=lr,
        warmup=300,
        ema=0.9995,
        sample_every=10**9,
        save_every=10**9,  # one save, at the end: a checkpoint mid-run costs a host sync and seconds
        log_every=200,
        text_encoder=str(pack_dir / "text-encoder.safetensors"),
        tokenizer=str(pack_dir / "tokenizer.json"),
        compile=compile,
        batch_probe=batch_probe,
        init=init,
    )
    started = time.time()
    result = main(cfg)
    out.mkdir(parents=True, exist_ok=True)
    ema, meta = load_module(work / "ema.safetensors", "denoiser")
    meta.pop("config", None)
    files = save_weights(out / "ema.safetensors", ema, "denoiser", meta, max_shard_bytes=MAX_SHARD)
    shutil.copy(work / "history.jsonl", out / "history.jsonl")
    last = sorted((work / "samples").glob("*.png"))[-1]
    shutil.copy(last, out / "samples.png")
    steady = [h for h in result["history"] if "images_per_s" in h][1:]  # the first includes compiling
    summary = {
        "preset": preset,
        "init": init,
        "steps": result["step"],
        "images_seen": result["images_seen"],
        "val_loss": result["val_loss"],
        "images_per_s": round(float(np.median([h["images_per_s"] for h in steady])), 1) if steady else None,
        "mfu": round(float(np.median([h["mfu"] for h in steady])), 4) if steady else None,
        "probe": next((h for h in result["history"] if "probe" in h), None),
        "wall_s": round(time.time() - started, 1),
        "files": [f.name for f in files],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary), file=sys.stderr)
    return summary


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack")
    a.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    a.add_argument("--dest", type=Path, default=Path(".pack"))
    a.add_argument("--resolution", type=int, default=64)
    a.add_argument("--init", type=Path, default=None, help="weights to start from (travel as int8)")
    b = sub.add_parser("run")
    b.add_argument("--pack", type=Path, default=Path(".pack"))
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--preset", default="base-x")
    b.add_argument("--minutes", type=float, required=True)
    b.add_argument("--batch", type=int, default=1024, help="used as is when --batch-probe is empty")
    b.add_argument("--batch-probe", default="1024,2048", help="batch sizes to try first; keep the fastest")
    b.add_argument("--lr", type=float, default=1e-3)
    b.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    b.add_argument("--init", default=None, help="default: the pack's init.safetensors, if any")
    args = p.parse_args()
    if args.cmd == "pack":
        print(json.dumps(pack(args.corpus, args.dest, args.resolution, args.init), indent=1))
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
            args.batch_probe,
            args.init,
        )
