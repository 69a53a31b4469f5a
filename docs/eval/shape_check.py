"""Can colour pass the fidelity instruments? Score images that have the right colours but not the
right shapes, next to the eval's references, with both evaluators and two ways of drawing the 31
competing prompts. The numbers in docs/evaluation.md ("Choosing the shape instrument") come from

    python docs/eval/shape_check.py --model limner-1 --out docs/eval/shape-check.json

Image sets, one per concept prompt (bench/prompts/concepts.jsonl):
  nearest-train   the training image whose caption is nearest (the eval's reference)
  blobs           that image shrunk to 4×4 pixels and blown up again: its colours where they
                  were, no shape
  other-subject   the training image of another subject whose 8×8 colour thumbnail is nearest
                  to that image's: a real drawing of the wrong thing in the right colours
  noise           uniform random pixels
  MODEL           the model's own images (seeds 1000 + i, as `limner eval` draws them)
and real: held-out validation images with their own captions (the ceiling; its prompts differ).

Competing prompts: random (as `limner eval`), or hard negatives — the 31 prompts whose
nearest-caption training images have the most similar 4×4 colour thumbnails.

With --tones it also draws the skin-tone prompts (bench/prompts/skin_tones.jsonl, seeds 1000 + i)
and reads them with the skin-tone reader and the old ITA reader: `limner eval`'s skin-tone
figures without its OCR, for when a full run does not fit. The nearest-caption training images
are found with the caption embeddings cached beside the corpus (caption-pooled.pt, made when the
evaluators were trained), not encoded again as `limner eval` does: the same MiniLM, batched
differently, so a near tie between two captions may rarely break the other way.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from limner.data.shards import iter_records, shard_paths
from limner.eval import metrics as M
from limner.eval.evaluator import Evaluator, pooled_captions, to_eval_tensor
from limner.eval.instruments import Instruments, load_instruments, pooled_text
from limner.eval.sources import generate_images


def blobs(img: Image.Image, side: int = 4) -> Image.Image:
    return img.resize((side, side), Image.Resampling.BOX).resize(img.size, Image.Resampling.BILINEAR)


def train_names(corpus: Path) -> list[str]:
    """Subject name of every packed training image, in the packed order (images, then typography)."""
    names = []
    for kind in ("images", "typography"):
        for rec in iter_records(shard_paths(corpus, "train", kind)):
            names.append(rec.meta.get("name", rec.key))
    return names


def train_caption_keys(corpus: Path) -> torch.Tensor:
    """Embeddings of every training image's first caption (the eval's nearest-train keys), from
    the cache of all captions the evaluators' training keeps: (N, 384)."""
    from limner.data.trainset import TrainSet

    flat: list[str] = []
    first = []
    for caps in TrainSet.load(corpus / "trainset-64-train.npz").captions:
        first.append(len(flat))
        flat.extend(caps)
    return pooled_captions(flat, corpus / "caption-pooled.pt")[first]


def nearest_by_caption(instr: Instruments, prompts: list[str], keys: torch.Tensor) -> np.ndarray:
    q = pooled_text(instr, prompts)
    return (q @ keys.T).argmax(1).numpy()


def read_tones(instr: Instruments, model: str, prompts_file: Path, save: Path | None) -> dict:
    """The model's skin-tone prompts read by the reader and by the ITA reader of version ≤ 5."""
    rows = [json.loads(line) for line in prompts_file.read_text().splitlines() if line.strip()]
    images = generate_images(model, [r["prompt"] for r in rows], [1000 + i for i in range(len(rows))], instr)
    if save:
        save.mkdir(parents=True, exist_ok=True)
        for r, im in zip(rows, images, strict=True):
            im.save(save / f"{r['id']}.webp", quality=90)
    truth = [r["tone"] for r in rows]
    read = [instr.tone_reader.read(im) for im in images]
    ita = [M.classify_tone(np.asarray(im.convert("RGB"))) for im in images]
    return {
        "n": len(rows),
        "accuracy": float(np.mean([a == b for a, b in zip(read, truth, strict=True)])),
        "no_skin_found": sum(r is None for r in read),
        "ita_accuracy": float(np.mean([a == b for a, b in zip(ita, truth, strict=True)])),
        "labels": M.TONES,
        "confusion": M.confusion(truth, read),
    }


def other_subject(instr: Instruments, names: list[str], nearest: np.ndarray) -> list[Image.Image]:
    thumbs = np.stack([M.colour_signature(im, 8) for im in instr.train_images])  # (N, 192)
    out = []
    for i in nearest:
        sims = thumbs @ thumbs[i]
        sims[[j for j, n in enumerate(names) if n == names[i]]] = -np.inf  # another subject
        out.append(Image.fromarray(instr.train_images[int(sims.argmax())]).resize((256, 256)))
    return out


def scores(
    evaluator: Evaluator, instr: Instruments, images: list, texts: list[str], hard: np.ndarray
) -> tuple[float, float]:
    with torch.no_grad():
        img = torch.cat(
            [evaluator.embed_images(to_eval_tensor(images[i : i + 256])) for i in range(0, len(images), 256)]
        )
        txt = evaluator.embed_texts(pooled_text(instr, texts))
    img_n, txt_n = img.numpy(), txt.numpy()
    return M.retrieval_top1(img_n, txt_n), M.retrieval_top1(img_n, txt_n, distractors=hard)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="also score this model's images")
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    ap.add_argument("--prompts", type=Path, default=Path("bench/prompts/concepts.jsonl"))
    ap.add_argument("--evaluator", type=Path, default=None)
    ap.add_argument("--shape-evaluator", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="write the table as JSON here")
    ap.add_argument("--tones", type=Path, default=None, help="also read --model's images of these skin-tone prompts")
    ap.add_argument("--save", type=Path, default=None, help="keep --model's images here")
    args = ap.parse_args()
    started = time.time()
    instr = load_instruments(args.corpus, args.evaluator, args.shape_evaluator)
    tones = None
    if args.model and args.tones:
        tones = read_tones(instr, args.model, args.tones, args.save and args.save / "skin_tones")
        print(json.dumps({"skin_tone": {k: v for k, v in tones.items() if k != "confusion"}}), flush=True)
    rows = [json.loads(line) for line in args.prompts.read_text().splitlines() if line.strip()]
    prompts = [r["prompt"] for r in rows]
    nearest = nearest_by_caption(instr, prompts, train_caption_keys(args.corpus))
    near_imgs = [Image.fromarray(instr.train_images[i]).resize((256, 256), Image.Resampling.LANCZOS) for i in nearest]
    hard = M.hard_negatives(np.stack([M.colour_signature(instr.train_images[i]) for i in nearest]))
    sets = {
        "nearest-train": near_imgs,
        "blobs": [blobs(im) for im in near_imgs],
        "other-subject": other_subject(instr, train_names(args.corpus), nearest),
        "noise": generate_images("noise", prompts, [], instr),
    }
    if args.model:
        sets[args.model] = generate_images(args.model, prompts, [1000 + i for i in range(len(prompts))], instr)
        if args.save:
            (args.save / "concepts").mkdir(parents=True, exist_ok=True)
            for r, im in zip(rows, sets[args.model], strict=True):
                im.save(args.save / "concepts" / f"{r['id']}.webp", quality=90)
    n_val = min(len(instr.val_images), 512)  # the eval's ceiling: the first 512 held-out images
    val = [Image.fromarray(a) for a in instr.val_images[:n_val]]
    val_hard = M.hard_negatives(np.stack([M.colour_signature(a) for a in instr.val_images[:n_val]]))
    table: dict[str, dict[str, float]] = {}
    for name, (images, texts, hn) in {
        "real": (val, instr.val_captions[:n_val], val_hard),
        **{k: (v, prompts, hard) for k, v in sets.items()},
    }.items():
        row = {}
        for label, ev in (("colour", instr.evaluator), ("grey", instr.shape)):
            row[f"{label} random"], row[f"{label} hard"] = scores(ev, instr, images, texts, hn)
        table[name] = row
    cols = list(next(iter(table.values())))
    print("| images | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(f"{row[c]:.3f}" for c in cols) + " |")
    print(f"({time.time() - started:.0f} s)")
    if args.out:
        report = {"chance": 1 / 32, "top1_of_32": table, "seconds": round(time.time() - started)}
        if tones:
            report["skin_tone"] = {"model": args.model, **tones}
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
