import pytest
import torch
from safetensors.torch import save_file

from limner.errors import CheckpointError
from limner.model.checkpoint import load_module, read_weights, save_weights, weight_files
from limner.model.denoiser import Denoiser, DenoiserConfig


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_float32_round_trip_is_exact_and_carries_config_and_metadata(tiny_denoiser, tmp_path):
    meta = {"steps": 1200, "preset": "tiny", "sampling": {"num_inference_steps": 12}}
    files = save_weights(tmp_path / "d.safetensors", tiny_denoiser, "denoiser", meta, torch.float32)
    assert files == [tmp_path / "d.safetensors"]
    loaded, extra = load_module(tmp_path / "d.safetensors", "denoiser")
    assert loaded.cfg == tiny_denoiser.cfg
    assert extra == {"config": tiny_denoiser.cfg.to_dict(), **meta}
    assert_same_weights(loaded, tiny_denoiser)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    x = torch.randn(1, 3, 32, 32)
    kw = {"text": torch.randn(1, 4, 384), "text_mask": torch.ones(1, 4, dtype=torch.bool)}
    kw["pooled"] = torch.randn(1, 384)
    with torch.no_grad():
        assert torch.equal(loaded(x, torch.tensor([0.5]), **kw), tiny_denoiser(x, torch.tensor([0.5]), **kw))


def test_float16_round_trip_equals_the_rounded_weights(tiny_denoiser, tiny_upsampler, tmp_path):
    for module, kind in ((tiny_denoiser, "denoiser"), (tiny_upsampler, "upsampler")):
        save_weights(tmp_path / f"{kind}.safetensors", module, kind)  # float16 by default
        tensors, _ = read_weights(tmp_path / f"{kind}.safetensors")
        assert {t.dtype for t in tensors.values()} == {torch.float16}
        loaded, _ = load_module(tmp_path / f"{kind}.safetensors", kind)
        for k, v in module.state_dict().items():
            assert torch.equal(loaded.state_dict()[k], v.half().float()), k


def test_sharded_weights_load_the_same(tiny_denoiser, tmp_path):
    path = tmp_path / "denoiser.safetensors"
    files = save_weights(path, tiny_denoiser, "denoiser", dtype=torch.float32, max_shard_bytes=60_000)
    n = len(files)
    assert n > 2 and not path.exists()
    assert [f.name for f in files] == [f"denoiser-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]
    assert weight_files(path) == files
    loaded, _ = load_module(path, "denoiser")
    assert_same_weights(loaded, tiny_denoiser)
    # saving whole again removes the shards, and the other way round
    assert save_weights(path, tiny_denoiser, "denoiser") == [path]
    assert sorted(tmp_path.iterdir()) == [path]
    save_weights(path, tiny_denoiser, "denoiser", max_shard_bytes=60_000)
    assert not path.exists() and len(list(tmp_path.iterdir())) > 1


def test_a_missing_shard_is_an_incomplete_download(tiny_denoiser, tmp_path):
    files = save_weights(tmp_path / "d.safetensors", tiny_denoiser, "denoiser", max_shard_bytes=30_000)
    files[1].unlink()
    with pytest.raises(CheckpointError, match=f"found {len(files) - 1} of {len(files)} shards"):
        load_module(tmp_path / "d.safetensors", "denoiser")


def test_a_truncated_shard_is_reported_by_name(tiny_denoiser, tmp_path):
    files = save_weights(tmp_path / "d.safetensors", tiny_denoiser, "denoiser", max_shard_bytes=30_000)
    files[-1].write_bytes(files[-1].read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=f"cannot read .*{files[-1].name}"):
        load_module(tmp_path / "d.safetensors", "denoiser")


def test_garbage_is_not_a_checkpoint(tmp_path):
    (tmp_path / "d.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_module(tmp_path / "d.safetensors", "denoiser")


def test_missing_weights(tmp_path):
    with pytest.raises(CheckpointError, match="no weights at"):
        load_module(tmp_path / "d.safetensors", "denoiser")


def test_foreign_or_mismatched_files_are_refused(tiny_denoiser, tmp_path):
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not a Limner weights file"):
        load_module(tmp_path / "other.safetensors", "denoiser")
    save_weights(tmp_path / "d.safetensors", tiny_denoiser, "denoiser")
    with pytest.raises(CheckpointError, match="holds a 'denoiser', not a 'upsampler'"):
        load_module(tmp_path / "d.safetensors", "upsampler")
    wider = Denoiser(DenoiserConfig(resolution=32, width=32, depth=1, heads=2))
    save_weights(tmp_path / "w.safetensors", wider, "denoiser")
    tensors, meta = read_weights(tmp_path / "w.safetensors")
    meta["config"] = meta["config"].replace('"width": 32', '"width": 64')
    save_file(tensors, str(tmp_path / "w.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="does not match its own config"):
        load_module(tmp_path / "w.safetensors", "denoiser")
