import pytest
from PIL import Image
from typer.testing import CliRunner

from limner.cli import app
from limner.data.report import caption_examples, contact_sheet, load_manifest
from limner.data.shards import iter_records, shard_paths

WIDE = {"COLUMNS": "200"}  # rich wraps tables at the terminal width


def test_load_manifest_explains_how_to_build_a_missing_corpus(tmp_path):
    with pytest.raises(FileNotFoundError, match="limner data build"):
        load_manifest(tmp_path)


def test_caption_examples_come_from_the_training_shards(built_corpus):
    examples = caption_examples(built_corpus, n=5)
    assert len(examples) == 5
    captions = {r.key: r.meta["captions"] for r in iter_records(shard_paths(built_corpus, "train"))}
    assert all(captions[key] == caps for key, caps in examples)
    assert caption_examples(built_corpus, n=5) == examples  # seeded


def test_stats_prints_counts_captions_and_attribution(built_corpus, manifest):
    result = CliRunner().invoke(app, ["data", "stats", "--corpus", str(built_corpus)], env=WIDE)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "noto (missing)" in out
    assert "CC BY-SA 4.0" in out and "public domain (CC0)" in out
    assert "synthetic typography" in out
    assert "caption examples" in out
    assert f"openmoji: {manifest['sources']['openmoji']['attribution']}" in out
    assert "fonts (" in out


def test_stats_on_a_folder_without_a_corpus_fails_cleanly(tmp_path):
    result = CliRunner().invoke(app, ["data", "stats", "--corpus", str(tmp_path)], env=WIDE)
    assert result.exit_code == 1
    assert "limner data build" in result.output
    assert "Traceback" not in result.output


def test_sheet_writes_a_png_grid_of_the_requested_size(built_corpus, tmp_path):
    out = tmp_path / "sheet.png"
    args = ["data", "sheet", "--corpus", str(built_corpus), "--out", str(out), "--n", "8"]
    result = CliRunner().invoke(app, args, env=WIDE)
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    with Image.open(out) as sheet:
        assert sheet.format == "PNG"
        assert sheet.size == (6 * 192, 2 * (192 + 70))  # 8 samples: six columns, two rows


def test_sheet_is_reproducible_and_needs_shards(built_corpus, tmp_path):
    a = contact_sheet(built_corpus, tmp_path / "a.png", n=4, seed=3, cell=32)
    b = contact_sheet(built_corpus, tmp_path / "b.png", n=4, seed=3, cell=32)
    assert a.read_bytes() == b.read_bytes()
    with pytest.raises(FileNotFoundError, match="no val shards"):
        contact_sheet(tmp_path, tmp_path / "c.png", split="val")
