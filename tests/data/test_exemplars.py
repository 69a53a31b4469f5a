import numpy as np
import pytest
import torch
from PIL import Image

from limner.data import exemplars as X
from limner.data.trainset import TrainSet, composite


def blob(side: int, box: tuple[int, int, int, int], colour=(200, 30, 30)) -> torch.Tensor:
    """(4, side, side) uint8 RGBA: a coloured rectangle on transparency."""
    img = torch.zeros(4, side, side, dtype=torch.uint8)
    x0, y0, x1, y1 = box
    img[:3, y0:y1, x0:x1] = torch.tensor(colour, dtype=torch.uint8)[:, None, None]
    img[3, y0:y1, x0:x1] = 255
    return img


def unit(rows: list[list[float]]) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


# records: 0–2 a rocket by three sources (0 and 1 are one source's two skin tones, say),
# 3 a clip art close in meaning to 4, 5 a clip art of nothing like them, 6 a typography scene
CONCEPTS = ["rocket", "rocket", "rocket", None, None, None, None]
FAMILIES = ["noto:rocket", "noto:rocket", "openmoji:rocket", "oc:a", "oc:b", "oc:c", "typo:x"]
KEYS = unit([[1, 0, 0], [1, 0, 0], [1, 0.1, 0], [0, 1, 0], [0, 0.95, 0.3], [0, 0, 1], [0.5, 0.5, 0]])
ELIGIBLE = np.array([True] * 6 + [False])


def thumbs() -> torch.Tensor:
    boxes = [
        (4, 4, 12, 12),
        (4, 4, 12, 12),
        (5, 3, 12, 13),
        (0, 0, 16, 8),
        (2, 8, 14, 16),
        (6, 0, 10, 16),
        (0, 0, 16, 16),
    ]
    return X.thumbnails(torch.stack([blob(64, tuple(4 * v for v in b)) for b in boxes]))


def test_training_exemplars_are_other_sources_drawings_never_the_record_or_its_variants():
    c = X.candidates(CONCEPTS, FAMILIES, KEYS, thumbs(), ELIGIBLE, k=4, min_similarity=0.8)
    assert c.shape == (7, 4) and c.dtype == np.int32
    assert c[0].tolist() == [2, -1, -1, -1]  # not itself (0), not its own skin tone (1)
    assert c[1].tolist() == [2, -1, -1, -1]
    assert sorted(c[2][c[2] >= 0].tolist()) == [0, 1]
    assert c[3].tolist() == [4, -1, -1, -1]  # no concept: the nearest key above the threshold
    assert c[5].tolist() == [-1] * 4  # nothing near enough: no exemplar
    assert c[6].tolist() == [-1] * 4  # typography neither gets nor gives one
    for i, row in enumerate(c):
        picked = row[row >= 0]
        assert i not in picked and all(FAMILIES[j] != FAMILIES[i] for j in picked)


def test_near_duplicate_thumbnails_are_not_exemplars():
    t = thumbs()
    t[4] = t[3]  # another family's file, but the same picture
    c = X.candidates(CONCEPTS, FAMILIES, KEYS, t, ELIGIBLE, k=4, min_similarity=0.8)
    assert c[3].tolist() == [-1] * 4


def test_retrieval_never_returns_the_query_on_the_real_pack(trainset_32):
    """On the packed fixture corpus: no record is ever its own exemplar, nor one of its family."""
    ts = TrainSet.load(trainset_32)
    assert ts.names is not None and ts.styles is not None and ts.tones is not None and ts.rgba is not None
    concepts = [X.concept_of(s, n) for s, n in zip(ts.sources, ts.names, strict=True)]
    families = [X.family_of(s, n, k) for s, n, k in zip(ts.sources, ts.names, ts.keys, strict=True)]
    keys = torch.nn.functional.normalize(torch.randn(len(ts), 8, generator=torch.Generator().manual_seed(0)), dim=1)
    c = X.candidates(concepts, families, keys, X.thumbnails(ts.rgba), np.ones(len(ts), bool), min_similarity=-1)
    assert (c >= 0).any()
    for i, row in enumerate(c):
        assert all(j != i and families[j] != families[i] for j in row[row >= 0])


def test_pick_takes_a_valid_candidate_or_none_and_drops_some():
    cands = torch.tensor([[3, 5, -1], [-1, -1, -1], [7, -1, -1]])
    rows = torch.tensor([0, 1, 2] * 200)
    g = torch.Generator().manual_seed(0)
    got = X.pick(cands, rows, g, dropout=0.25)
    assert set(got[rows == 0].tolist()) == {3, 5, -1}
    assert set(got[rows == 1].tolist()) == {-1}
    assert set(got[rows == 2].tolist()) == {7, -1}
    assert 0.15 < (got[rows != 1] == -1).float().mean() < 0.35
    assert (X.pick(cands, rows, g, dropout=0.0)[rows == 2] == 7).all()


def test_thumbnails_are_premultiplied_box_averages():
    img = blob(64, (0, 0, 32, 64))  # left half opaque red
    t = X.thumbnails(img[None])[0]
    assert t.shape == (4, 16, 16)
    assert t[3, :, :8].eq(255).all() and t[3, :, 8:].eq(0).all()
    assert t[0, :, :8].eq(200).all() and t[:3, :, 8:].eq(0).all()  # nothing colours transparency


def test_render_without_jitter_scales_up_and_blank_stays_blank():
    t = X.thumbnails(torch.stack([blob(64, (0, 0, 32, 64)), torch.zeros(4, 64, 64, dtype=torch.uint8)]))
    out = X.render(t, 64)
    assert out.shape == (2, 4, 64, 64) and out.dtype == torch.float32
    assert torch.equal(out[1], torch.zeros(4, 64, 64))
    assert out[0, 3, :, :28].min() > 0.99 and out[0, 3, 4:-4, 36:].max() < 0.01


def test_render_jitter_is_seeded_and_greys_some():
    t = X.thumbnails(torch.stack([blob(64, (8, 8, 40, 56), (250, 20, 20))] * 64))
    a = X.render(t, 64, torch.Generator().manual_seed(1))
    b = X.render(t, 64, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    grey = (a[:, 0] - a[:, 1]).abs().amax((1, 2)) < 1e-4
    assert 10 < int(grey.sum()) < 54
    centres = (a[:, 3] * torch.arange(64.0)).sum((1, 2)) / a[:, 3].sum((1, 2))
    assert centres.std() > 0.5  # shifted, scaled and mirrored, not all in one place


def test_database_round_trip_lookup_and_threshold(tmp_path):
    t = thumbs()[:3]
    db = X.ExemplarDB(t, unit([[1, 0, 0], [0, 1, 0], [0, 0.9, 0.44]]), ["rocket", "star", "star 2"], ["noto"] * 3, 0.7)
    db.save(tmp_path / "db.npz")
    back = X.ExemplarDB.load(tmp_path / "db.npz")
    assert back.labels == db.labels and back.sources == db.sources and back.threshold == 0.7
    assert (back.thumbs.int() - t.int()).abs().float().mean() < 2  # a lossy WebP atlas
    torch.testing.assert_close(back.keys, db.keys, atol=0.01, rtol=0)
    found, rows = back.lookup(unit([[1, 0.05, 0], [0, 0, 1]]), [0, 0])
    assert rows == [0, -1]
    assert torch.equal(found[0], back.thumbs[0])
    assert torch.equal(found[1], torch.zeros(4, 16, 16, dtype=torch.uint8))  # nothing near enough
    # two entries within the margin: the seed chooses between them, the best first
    near = unit([[0, 1, 0.2]])
    assert [back.lookup(near, [s], margin=0.2)[1][0] for s in range(4)] == [1, 2, 1, 2]
    assert [back.lookup(near, [s], margin=0.01)[1][0] for s in range(4)] == [1, 1, 1, 1]


def test_users_add_images_from_a_folder(tmp_path):
    Image.new("RGBA", (40, 20), (0, 0, 255, 255)).save(tmp_path / "blue_banner.png")
    Image.new("RGB", (30, 30), (0, 200, 0)).save(tmp_path / "x.webp")
    (tmp_path / "x.txt").write_text("a green square\n")
    (tmp_path / "notes.md").write_text("ignored")
    db = X.ExemplarDB(torch.zeros(0, 4, 16, 16, dtype=torch.uint8), torch.zeros(0, 3), [], [])
    seen = []

    def embed(texts: list[str]) -> torch.Tensor:
        seen.extend(texts)
        return unit([[1, 0, 0]] * len(texts))

    assert db.add_folder(tmp_path, embed) == 2
    assert seen == ["blue banner", "a green square"] and db.sources == ["user", "user"]
    banner = db.thumbs[0]
    assert banner[3, 5:11].eq(255).all() and banner[3, :3].eq(0).all()  # padded to a square, centred
    assert banner[2, 8, 8] == 255


def test_composite_on_the_device_matches_the_packed_composites(trainset_32):
    ts = TrainSet.load(trainset_32)
    assert ts.rgba is not None and ts.backgrounds is not None
    mine = composite(ts.rgba, ts.backgrounds)
    assert (mine - ts.images.float()).abs().mean() < 6  # both lossy WebP, resized before or after


@pytest.mark.parametrize("name", ["grinning face", ""])
def test_concepts_are_emoji_names_only(name):
    assert X.concept_of("noto", name) == (name or None)
    assert X.concept_of("openclipart", "rocket") is None
    assert X.family_of("openclipart", "rocket", "oc_1") == "openclipart:oc_1"
    assert X.key_text("thumbs up", ["dark"], "3D render") == "thumbs up, dark skin tone, 3D render"


def test_a_shrunk_database_finds_the_same_entries_and_survives_saving(tmp_path):
    g = torch.Generator().manual_seed(0)
    keys = torch.nn.functional.normalize(torch.randn(40, 384, generator=g), dim=1)
    thumbs = torch.randint(0, 255, (40, 4, 16, 16), generator=g, dtype=torch.uint8)
    families = [f"src:{i // 2}" for i in range(40)]  # pairs: one person's two skin tones, say
    full = X.ExemplarDB(thumbs, keys, [f"thing {i}" for i in range(40)], ["noto"] * 40, threshold=0.5)
    small = X.shrink(full, dims=16, one_per_family=families)
    assert len(small) == 20 and small.labels == [f"thing {i}" for i in range(0, 40, 2)]
    assert small.keys.shape == (20, 16) and small.proj is not None and small.proj.shape == (384, 16)
    queries = keys[0:40:2] + 0.02 * torch.randn(20, 384, generator=g)
    assert small.lookup(queries, [0] * 20)[1] == list(range(20))
    small.save(tmp_path / "db.npz")
    back = X.ExemplarDB.load(tmp_path / "db.npz")
    assert back.lookup(queries, [0] * 20)[1] == list(range(20))
    with np.load(tmp_path / "db.npz") as z:
        assert z["keys"].shape == (20, 16) and z["keys"].dtype == np.int8
