"""Score calibration runs: each EMA snapshot of each run generates 64 px images for held-out
prompts of the run's concept subset, and the project's evaluator says how often an image picks
its own prompt among 32 (prompt fidelity, as ``limner eval`` measures it) — in colour, and with
the images turned grey (a crude stand-in for shape fidelity until ``limner eval`` has one:
colour alone cannot pass it). References on the same prompts: the real held-out images (the
ceiling) and the training image with the nearest caption (pure memorisation).

    python bench/calibrate.py runs/cal-a runs/cal-b --out docs/calibration.json --plot docs/calibration.png

Prompts: the first caption of every validation record of the subset (its concepts appear in the
training subset drawn by other sources; the images themselves were never trained on); seed
1000 + i, 20 Euler steps, guidance 4, exemplars looked up in the run's training subset.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from limner.data import exemplars as X
from limner.data.exemplars import Exemplars, subset_of
from limner.data.trainset import TrainSet
from limner.eval.evaluator import Evaluator, to_eval_tensor
from limner.eval.metrics import retrieval_top1
from limner.model.checkpoint import load_denoiser
from limner.model.sampling import cfg_denoiser, flow_sigmas, sample_euler
from limner.model.text import TextEncoder, Tokenizer, encode_pooled


@torch.no_grad()
def generate(model, encoder, tokenizer, prompts: list[str], db: X.ExemplarDB | None, batch: int = 32) -> np.ndarray:
    """(N, 64, 64, 3) uint8, image i from seed 1000 + i."""
    out = []
    r = model.cfg.resolution
    for i in range(0, len(prompts), batch):
        chunk = prompts[i : i + batch]
        n = len(chunk)
        t = tokenizer([*chunk, *[""] * n], length=tokenizer.max_tokens)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            states, pooled = encoder(t.ids, t.mask)
        states, pooled = states.float(), pooled.float()
        seeds = list(range(1000 + i, 1000 + i + n))
        exemplar = None
        if db is not None and model.cfg.exemplar_channels:
            exemplar = X.render(db.lookup(pooled[:n], seeds)[0], r)
        cond = {"text": states[:n], "text_mask": t.mask[:n], "pooled": pooled[:n], "glyph": None, "exemplar": exemplar}
        uncond = {"text": states[n:], "text_mask": t.mask[n:], "pooled": pooled[n:], "glyph": None, "exemplar": None}
        noise = torch.stack([torch.randn(3, r, r, generator=torch.Generator().manual_seed(s)) for s in seeds])

        def net(x, s, **kw):
            return model(x, s, **kw).float()

        x0 = sample_euler(cfg_denoiser(net, cond, uncond, 4.0), noise, flow_sigmas(20))
        out.append(((x0.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def grey(images: np.ndarray) -> np.ndarray:
    y = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.repeat(y[..., None], 3, -1).round().astype(np.uint8)


class Scorer:
    def __init__(self, evaluator: Evaluator, text_pooled: torch.Tensor):
        self.evaluator = evaluator
        self.text = evaluator.embed_texts(text_pooled).numpy()

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> dict:
        def top1(x: np.ndarray) -> float:
            emb = torch.cat(
                [self.evaluator.embed_images(to_eval_tensor(x[i : i + 256])) for i in range(0, len(x), 256)]
            )
            return round(retrieval_top1(emb.numpy(), self.text, k=32), 4)

        return {"fidelity": top1(images), "grey_fidelity": top1(grey(images))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--evaluator", type=Path, default=Path("weights/evaluator.safetensors"))
    p.add_argument("--n", type=int, default=256, help="prompts (validation records of the subset)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--plot", type=Path)
    args = p.parse_args()
    torch.set_num_threads(1)

    first = torch.load(args.runs[0] / "checkpoint.pt", map_location="cpu", weights_only=False)["config"]
    share = first["subset"]
    train = subset_of(TrainSet.load(args.corpus / "trainset-64-train.npz"), share)
    val = subset_of(TrainSet.load(args.corpus / "trainset-64-val.npz"), share)
    pick = np.random.default_rng(0).permutation(len(val))[: args.n]
    prompts = [val.captions[i][0] for i in pick]
    encoder, tokenizer = TextEncoder.load(), Tokenizer()
    evaluator, _ = Evaluator.load(args.evaluator)
    score = Scorer(evaluator, encode_pooled(prompts, encoder, tokenizer, torch.device("cpu")))
    db = Exemplars(train, encoder, tokenizer, torch.device("cpu")).db
    q = encode_pooled(prompts, encoder, tokenizer, torch.device("cpu"))
    keys = encode_pooled([c[0] for c in train.captions], encoder, tokenizer, torch.device("cpu"))
    nearest = (q @ keys.T).argmax(1)
    results = {
        "share": share,
        "prompts": len(prompts),
        "real": score(val.images[pick].permute(0, 2, 3, 1).numpy()),
        "nearest_train": score(train.images[nearest].permute(0, 2, 3, 1).numpy()),
        "runs": {},
    }
    print(json.dumps({k: v for k, v in results.items() if k != "runs"}), flush=True)
    done = json.loads(args.out.read_text())["runs"] if args.out.exists() else {}
    for run in args.runs:
        rows = done.get(run.name, [])
        seen = {r["file"] for r in rows}
        for snap in sorted((run / "snapshots").glob("ema-*.safetensors")):
            if snap.name in seen:
                continue
            model, meta = load_denoiser(snap)
            row = {"file": snap.name, **{k: meta.get(k) for k in ("steps", "images_seen", "cpu_seconds")}}
            row |= score(generate(model, encoder, tokenizer, prompts, db))
            rows.append(row)
            print(run.name, json.dumps(row), flush=True)
            results["runs"][run.name] = rows
            args.out.write_text(json.dumps(results | {"runs": {**done, **results["runs"]}}, indent=1))
        results["runs"][run.name] = rows
    args.out.write_text(json.dumps(results | {"runs": {**done, **results["runs"]}}, indent=1))
    if args.plot:
        plot({**done, **results["runs"]}, results, args.plot)


def plot(runs: dict, refs: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, title in zip(axes, ("fidelity", "grey_fidelity"), ("prompt fidelity", "in grey (shape)"), strict=True):
        for name, rows in runs.items():
            rows = sorted(rows, key=lambda r: r["images_seen"])
            ax.plot([r["images_seen"] / 1e3 for r in rows], [r[key] for r in rows], marker="o", label=name)
        ax.axhline(refs["real"][key], color="k", ls="--", lw=1, label="real held-out")
        ax.axhline(refs["nearest_train"][key], color="grey", ls=":", lw=1, label="nearest training image")
        ax.set_xlabel("thousand images seen")
        ax.set_title(f"{title}, top-1 of 32")
        ax.set_ylim(0, 1)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
