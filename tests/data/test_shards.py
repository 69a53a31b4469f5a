import io
import tarfile

import pytest
from PIL import Image

from limner.data.colors import BACKGROUND_COLOURS
from limner.data.shards import Record, ShardWriter, iter_records, shard_paths


def _png(colour: tuple[int, int, int, int], mode: str = "RGBA") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (4, 4), colour if mode == "RGBA" else colour[0]).save(buf, format="PNG")
    return buf.getvalue()


def _records(n: int) -> list[Record]:
    return [
        Record(
            f"src_item-{i:03d}",
            {"key": f"src_item-{i:03d}", "captions": [f"thing {i}", "ünïcode ✓"], "n": i},
            {"webp": bytes([i]) * (i + 1), "glyph.png": _png((i, 0, 0, 255))},
        )
        for i in range(n)
    ]


def _write(out, records, per_shard=1000, prefix="train"):
    with ShardWriter(out, prefix, per_shard=per_shard) as w:
        for r in records:
            w.write(r)
    return w


def test_round_trip_keeps_keys_meta_and_bytes(tmp_path):
    records = _records(5)
    w = _write(tmp_path, records)
    assert w.count == 5
    back = list(iter_records(w.paths))
    assert [r.key for r in back] == [r.key for r in records]
    assert [r.meta for r in back] == [r.meta for r in records]
    assert [r.files for r in back] == [r.files for r in records]


def test_webdataset_layout_one_member_per_extension(tmp_path):
    w = _write(tmp_path, _records(1))
    with tarfile.open(w.paths[0]) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "src_item-000.json",
        "src_item-000.webp",
        "src_item-000.glyph.png",
    ]
    assert {(m.mtime, m.mode) for m in members} == {(0, 0o644)}


def test_shards_roll_over_at_per_shard(tmp_path):
    w = _write(tmp_path, _records(5), per_shard=2)
    assert [p.name for p in w.paths] == ["train-00000.tar", "train-00001.tar", "train-00002.tar"]
    assert shard_paths(tmp_path, "train") == w.paths
    assert [r.key for r in iter_records(w.paths)] == [r.key for r in _records(5)]


def test_same_records_give_byte_identical_shards(tmp_path):
    a = _write(tmp_path / "a", _records(5)).paths[0].read_bytes()
    b = _write(tmp_path / "b", _records(5)).paths[0].read_bytes()
    assert a == b


def test_keys_with_dots_are_refused(tmp_path):
    with ShardWriter(tmp_path, "train") as w, pytest.raises(ValueError, match="may not contain"):
        w.write(Record("bad.key", {}, {"webp": b""}))


def test_shard_paths_separate_images_from_typography(tmp_path):
    _write(tmp_path, _records(1), prefix="val")
    _write(tmp_path, _records(1), prefix="typography-val")
    assert [p.name for p in shard_paths(tmp_path, "val")] == ["val-00000.tar"]
    assert [p.name for p in shard_paths(tmp_path, "val", "typography")] == ["typography-val-00000.tar"]
    assert shard_paths(tmp_path, "train") == []


def test_record_image_composites_rgba_onto_its_background():
    buf = io.BytesIO()
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(buf, format="WEBP", lossless=True)
    rec = Record("k", {"background": {"kind": "flat", "colours": ["teal"]}}, {"webp": buf.getvalue()})
    assert rec.image().getpixel((4, 4)) == dict(BACKGROUND_COLOURS)["teal"]
    assert rec.rgba().getpixel((4, 4))[3] == 0
    assert rec.glyph() is None


def test_record_glyph_is_greyscale():
    rec = Record("k", {}, {"glyph.png": _png((255, 0, 0, 0), mode="L")})
    assert rec.glyph().mode == "L"
    assert rec.glyph().getpixel((0, 0)) == 255
