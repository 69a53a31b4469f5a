"""The upsampler's training script on the test corpus: it trains, keeps a checkpoint and weights
the engine loads, resumes where it stopped (same batches as an uninterrupted run), and learns."""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from limner.model.checkpoint import load_upsampler
from limner.train_upsampler import UpsamplerTrainConfig, main


def config(corpus, out, **over) -> UpsamplerTrainConfig:
    # the test corpus is 64 px: 32 px crops upsampled from 8 px; every source, however small its originals
    base = UpsamplerTrainConfig(
        preset="tiny", data=str(corpus), out=str(out), steps=8, batch=4, crop=32, min_native=0, max_images=48,
        save_every=4, lr=3e-3,
    )  # fmt: skip
    return replace(base, **over)


def test_train_upsampler_saves_weights_and_resumes_where_it_stopped(built_corpus, tmp_path):
    whole = main(config(built_corpus, tmp_path / "whole"))
    assert whole["step"] == 8 and math.isfinite(whole["val_l1"]) and math.isfinite(whole["bicubic_l1"])
    model, _ = load_upsampler(tmp_path / "whole" / "upsampler.safetensors")  # the engine's loader
    assert sum(p.numel() for p in model.parameters()) > 0

    main(config(built_corpus, tmp_path / "cut", steps=4))  # cut off at step 4 …
    resumed = main(config(built_corpus, tmp_path / "cut", resume=True))  # … and resumed
    assert resumed["step"] == 8
    history = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)["history"]
    assert [h["step"] for h in history] == [4, 4, 8, 8]  # one at each save, one at each end
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)  # the same run, in two parts


def test_train_upsampler_learns(built_corpus, tmp_path):
    start = main(config(built_corpus, tmp_path / "u", steps=1, save_every=1000))
    after = main(config(built_corpus, tmp_path / "u", steps=60, save_every=1000, resume=True))
    assert after["val_l1"] < start["val_l1"]
