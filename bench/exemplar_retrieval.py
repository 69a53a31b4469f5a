"""How well does the exemplar database find a prompt's concept, and how small can it ship?

For the 336 concept prompts of ``bench/prompts/concepts.jsonl``: the best key similarity, and
whether the best entry names the prompt's concept (a hit), for the full database and shrunk ones
(keys on fewer principal directions, one entry per family), with the bytes each takes.

    python bench/exemplar_retrieval.py --corpus data/corpus
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from limner.data import exemplars as X
from limner.data.exemplars import Exemplars
from limner.data.trainset import TrainSet
from limner.model.text import TextEncoder, Tokenizer, encode_pooled


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--prompts", type=Path, default=Path("bench/prompts/concepts.jsonl"))
    args = p.parse_args()
    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    train = TrainSet.load(args.corpus / "trainset-64-train.npz")
    encoder, tokenizer = TextEncoder.load(), Tokenizer()
    ex = Exemplars(train, encoder, tokenizer, cpu, args.corpus / "exemplar-keys-64.pt")
    _, families, _, eligible = X.record_info(train)
    fams = [families[i] for i in np.flatnonzero(eligible)]
    rows = [json.loads(line) for line in args.prompts.read_text().splitlines() if line.strip()]
    q = encode_pooled([r["prompt"] for r in rows], encoder, tokenizer, cpu)
    print(f"full database: {len(ex.db)} entries")
    for dims, dedupe in ((384, False), (128, False), (64, False), (128, True), (64, True), (48, True), (32, True)):
        db = X.shrink(ex.db, dims, fams if dedupe else None)
        with tempfile.TemporaryDirectory() as tmp:
            db.save(Path(tmp) / "db.npz")
            size = (Path(tmp) / "db.npz").stat().st_size
        sims = db.project(q) @ db.keys.T
        best, idx = sims.max(1)
        hit = np.array([r["concept"].lower() in db.labels[int(i)].lower() for r, i in zip(rows, idx, strict=True)])
        line = f"dims {dims:3d} one per family {dedupe!s:5}: {len(db):5d} entries, {size / 1e6:.2f} MB | hit {hit.mean():.3f}"
        for t in (0.5, 0.6, 0.7, 0.8):
            use = (best >= t).numpy()
            line += f" | ≥{t}: {use.mean():.2f} used, hit {hit[use].mean() if use.any() else float('nan'):.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
