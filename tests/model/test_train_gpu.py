"""The GPU recipe end to end on the CPU, with the tiny exemplar preset: pack (from the fixture
corpus, with int8 starting weights), then train to the clock with the batch probe."""

import json

import numpy as np
import pytest
import torch

from limner import train_gpu
from limner.data.exemplars import thumbnails
from limner.data.trainset import TrainSet, pack
from limner.model.checkpoint import init_from, load_module, read_weights
from limner.model.denoiser import PRESETS, Denoiser
from tiny import tiny_weights


@pytest.fixture(scope="module")
def packed(built_corpus, tmp_path_factory, tiny_x_weights):
    dest = tmp_path_factory.mktemp("gpu") / "pack"
    sizes = train_gpu.pack(built_corpus, dest, resolution=32, init=tiny_x_weights)
    return dest, sizes


@pytest.fixture(scope="module")
def tiny_x_weights(tmp_path_factory):
    return tiny_weights(tmp_path_factory.mktemp("init"), preset="tiny-x", meta={"steps": 7}) / "denoiser.safetensors"


def test_the_pack_holds_composites_and_thumbnails_not_foregrounds_and_reports_its_size(packed, built_corpus):
    dest, sizes = packed
    assert set(sizes) == {
        "trainset-32-train.npz",
        "trainset-32-val.npz",
        "text-encoder.safetensors",
        "tokenizer.json",
        "init.safetensors",
        "total_mib",
    }
    assert json.loads((dest / "pack.json").read_text()) == sizes
    with np.load(dest / "trainset-32-train.npz") as z:
        assert "fg" not in z.files and {"images", "thumbs_atlas"} <= set(z.files)
    travelled = TrainSet.load(dest / "trainset-32-train.npz")
    assert travelled.rgba is None and travelled.thumbs is not None
    full = TrainSet.load(pack(built_corpus, dest.parent / "full.npz", 32, "train"))
    assert full.rgba is not None
    assert (travelled.thumbs.int() - thumbnails(full.rgba).int()).abs().float().mean() < 4  # a lossy atlas
    assert torch.equal(travelled.images, full.images)
    assert not list(built_corpus.glob("trainset-*")) and not list(dest.glob("full-*"))  # only read; no leftovers


def test_starting_weights_travel_as_int8_and_come_back_close(packed, tiny_x_weights):
    dest, sizes = packed
    _, meta = read_weights(dest / "init.safetensors")
    original, _ = load_module(tiny_x_weights, "denoiser")
    assert sizes["init.safetensors"] < 0.75 * tiny_x_weights.stat().st_size
    model = Denoiser(PRESETS["tiny-x"])
    assert init_from(model, dest / "init.safetensors") == []
    for k, v in original.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v, atol=2e-3, rtol=0.02)
    assert json.loads(meta["steps"]) == 7


def test_a_pack_over_the_limit_is_refused(built_corpus, tmp_path):
    with pytest.raises(SystemExit, match="over the"):
        train_gpu.pack(built_corpus, tmp_path / "p", resolution=32, limit=1000)


def test_the_run_trains_to_the_clock_and_returns_small_shards(packed, tmp_path):
    dest, _ = packed
    out = tmp_path / "out"
    summary = train_gpu.run(
        dest, out, "tiny-x", minutes=0.05, batch=4, lr=1e-3, compile=False, batch_probe="2,4", work=tmp_path / "w"
    )
    assert summary["init"] == str(dest / "init.safetensors")
    assert summary["probe"]["batch"] in (2, 4) and set(summary["probe"]["probe"]) == {2, 4}
    assert summary["images_seen"] > summary["steps"] and summary["val_loss"] is not None
    files = sorted(out.glob("ema*.safetensors"))
    assert [f.name for f in files] == summary["files"] and 1 <= len(files) <= 8
    assert all(f.stat().st_size <= 16 * 2**20 for f in files)
    ema, meta = load_module(out / "ema.safetensors", "denoiser")
    assert ema.cfg == PRESETS["tiny-x"] and meta["images_seen"] == summary["images_seen"]
    assert (out / "samples.png").exists() and (out / "history.jsonl").exists()
