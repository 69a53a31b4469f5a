import numpy as np
import pytest
import torch

from limner.data.shards import iter_records, shard_paths
from limner.data.trainset import TrainSet, pack


def test_pack_and_load_keep_every_record_in_order(built_corpus, manifest, tmp_path):
    path = pack(built_corpus, tmp_path / "trainset-16.npz", resolution=16)
    ts = TrainSet.load(path)
    records = list(iter_records(shard_paths(built_corpus, "train") + shard_paths(built_corpus, "train", "typography")))
    n_typo = manifest["typography"]["train"]
    assert len(ts) == manifest["images"]["train"] + n_typo == len(records)
    assert ts.resolution == 16
    assert ts.images.shape == (len(records), 3, 16, 16) and ts.images.dtype == torch.uint8
    assert ts.glyphs.shape == (n_typo, 1, 16, 16)
    assert ts.keys == [r.key for r in records]
    assert ts.captions == [r.meta["captions"] for r in records]
    assert ts.sources == [r.meta["source"] for r in records]
    has_glyph = [r.glyph() is not None for r in records]
    assert (ts.glyph_of >= 0).tolist() == has_glyph
    assert sorted(ts.glyph_of[ts.glyph_of >= 0].tolist()) == list(range(n_typo))


def test_packed_images_are_the_composited_records_resized(built_corpus, tmp_path):
    ts = TrainSet.load(pack(built_corpus, tmp_path / "t.npz", resolution=32, limit=3))
    assert len(ts) == 3
    first = next(iter_records(shard_paths(built_corpus, "train")))
    expected = np.asarray(first.image().resize((32, 32))).astype(np.int16)  # (32, 32, 3)
    got = ts.images[0].permute(1, 2, 0).numpy().astype(np.int16)
    assert np.abs(got - expected).mean() < 12  # WebP at quality 85 is lossy


def test_pack_needs_shards(tmp_path):
    with pytest.raises(FileNotFoundError, match="limner data build"):
        pack(tmp_path, tmp_path / "t.npz", resolution=16)


def test_load_labels_an_old_fluent_3d_pack_as_drawn(built_corpus, tmp_path):
    """A pack made from a corpus built before the Fluent 3D label fix trains on the tone drawn."""
    import json

    path = pack(built_corpus, tmp_path / "t.npz", resolution=16, limit=2)
    with np.load(path) as z:
        parts = {k: z[k] for k in z.files}
    meta = json.loads(parts["meta"].tobytes())
    meta["sources"][0], meta["keys"][0], meta["tones"][0] = "fluent-3d", "fluent-3d_1f44b-1f3fc", ["medium-light"]
    meta["captions"][0] = ["waving hand, medium-light skin tone, 3D render"]
    parts["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **parts)
    ts = TrainSet.load(path)
    assert ts.tones is not None and ts.tones[0] == ["medium"]
    assert ts.captions[0] == ["waving hand, medium skin tone, 3D render"]
    assert ts.captions[1] == meta["captions"][1]
