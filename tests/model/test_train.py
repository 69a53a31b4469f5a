import json
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

import limner.train
from limner import cli
from limner.data.trainset import TrainSet
from limner.model.checkpoint import load_module
from limner.model.denoiser import PRESETS, Denoiser
from limner.model.flow import flow_loss
from limner.model.muon import orthogonalise, split_params
from limner.model.text import TextEncoder, Tokenizer
from limner.train import TrainConfig, cli_args, lr_at, main, probe_batch

TIMING = ("steps_per_s", "images_per_s", "mfu", "elapsed", "cpu_seconds")  # wall-clock facts, not the run's


class Interrupted(Exception):
    pass


def config(trainset, out, **kw) -> TrainConfig:
    base = TrainConfig(
        preset="tiny",
        data=str(trainset),
        out=str(out),
        steps=8,
        batch=4,
        lr=2e-3,
        warmup=3,
        save_every=4,
        sample_every=1000,
        log_every=1,
        device="cpu",
    )
    return replace(base, **kw)


def curve(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k not in TIMING} for h in history]


def test_resume_continues_the_run_exactly(trainset_32, tmp_path, monkeypatch):
    """Stop a run right after its step-4 checkpoint, resume it, and compare with the same run
    uninterrupted: same loss curve, same weights, EMA and optimizer state, bit for bit (one
    process on a CPU is deterministic, and the checkpoint holds every random state)."""
    whole = main(config(trainset_32, tmp_path / "whole"))

    def crash(*args, **kwargs):
        raise Interrupted

    with monkeypatch.context() as m:
        m.setattr(limner.train, "sample_grid", crash)
        with pytest.raises(Interrupted):
            main(config(trainset_32, tmp_path / "split", sample_every=4))
    saved = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)
    assert saved["step"] == 4
    resumed = main(config(trainset_32, tmp_path / "split", resume=True))

    assert whole["step"] == resumed["step"] == 8
    assert [h["step"] for h in whole["history"]] == [1, 2, 3, 4, 4, 5, 6, 7, 8, 8, 8]
    assert curve(resumed["history"]) == curve(whole["history"])
    assert whole["val_loss"] == resumed["val_loss"] is not None
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)
    for part in ("model", "ema"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    for i, state in a["optimizer"]["state"].items():
        for k in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(state[k], b["optimizer"]["state"][i][k])

    history = [json.loads(line) for line in (tmp_path / "split" / "history.jsonl").read_text().splitlines()]
    assert curve(history) == curve(whole["history"])
    ema, meta = load_module(tmp_path / "split" / "ema.safetensors", "denoiser")
    assert meta["steps"] == 8 and meta["preset"] == "tiny"
    for k, v in b["ema"].items():
        assert torch.equal(ema.state_dict()[k], v.half().float())
    assert (tmp_path / "split" / "samples" / "step-0000008.png").exists()


def test_learning_rate_warms_up_holds_and_decays_to_a_tenth():
    cfg = TrainConfig(lr=1e-3, warmup=10)
    assert lr_at(cfg, 0, 0.0) == pytest.approx(1e-4)
    assert lr_at(cfg, 9, 0.1) == pytest.approx(1e-3)
    assert lr_at(cfg, 500, 0.79) == pytest.approx(1e-3)
    assert lr_at(cfg, 900, 0.9) == pytest.approx(0.55e-3)
    assert lr_at(cfg, 1000, 1.0) == pytest.approx(1e-4)


def test_command_line_flags_fill_the_config():
    argv = ["--preset", "tiny", "--steps", "12", "--minutes", "1.5", "--betas", "0.8", "0.95"]
    cfg = cli_args([*argv, "--no-flip", "--init", "w.safetensors", "--resume"])
    assert cfg == TrainConfig(
        preset="tiny",
        steps=12,
        minutes=1.5,
        betas=(0.8, 0.95),
        flip=False,
        init="w.safetensors",
        resume=True,
    )


# `limner train` -------------------------------------------------------------------------------


def test_train_runs_and_writes_a_loadable_checkpoint(trainset_32, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--preset", "tiny", "--data", str(trainset_32), "--out", str(out)]
    args += ["--steps", "2", "--batch", "2", "--warmup", "1", "--save-every", "2"]
    args += ["--sample-every", "100"]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    _, meta = load_module(out / "ema.safetensors", "denoiser")
    assert (meta["steps"], meta["preset"], meta["images_seen"]) == (2, "tiny", 4)
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history if "loss" in h] == [2]


def test_train_resume_needs_a_checkpoint(tmp_path):
    result = CliRunner().invoke(cli.app, ["train", "--out", str(tmp_path), "--resume"])
    assert result.exit_code == 1
    assert "no checkpoint at" in result.stderr


# exemplars, Muon, the batch probe ---------------------------------------------------------------


def test_the_tiny_exemplar_model_overfits_a_handful_of_images(trainset_32, tmp_path):
    """tiny-x trained on the 8 packed fixture images, exemplars included, learns them: its
    denoising error on them (fixed noise, σ across the range) falls far below the untrained
    network's."""
    cfg = config(trainset_32, tmp_path / "x", preset="tiny-x", steps=300, batch=8, lr=3e-3, warmup=20)
    main(replace(cfg, save_every=300, log_every=50, ema=0.95))
    ts = TrainSet.load(trainset_32)
    trained, _ = load_module(tmp_path / "x" / "ema.safetensors", "denoiser")
    fresh = Denoiser(PRESETS["tiny-x"])
    encoder, tokenizer = TextEncoder.load(), Tokenizer()
    t = tokenizer([c[0] for c in ts.captions])
    with torch.no_grad():
        text, pooled = encoder(t.ids, t.mask)
    g = torch.Generator().manual_seed(0)
    x0 = ts.images.float() / 127.5 - 1
    noise = torch.randn(x0.shape, generator=g)
    sigma = torch.linspace(0.1, 0.9, len(ts))

    def error(model: torch.nn.Module) -> float:
        with torch.no_grad():
            return float(flow_loss(lambda x, s: model(x, s, text, t.mask, pooled), x0, noise, sigma).mean())

    assert error(trained) < 0.35 * error(fresh)


def test_muon_runs_resume_exactly(trainset_32, tmp_path):
    whole = main(config(trainset_32, tmp_path / "whole", optimizer="muon", preset="tiny-x", steps=6, save_every=3))
    main(config(trainset_32, tmp_path / "split", optimizer="muon", preset="tiny-x", steps=3, save_every=3))
    resumed = main(config(trainset_32, tmp_path / "split", steps=6, save_every=3, resume=True))
    losses = [h for h in curve(whole["history"]) if "loss" in h]
    assert [h for h in curve(resumed["history"]) if "loss" in h] == losses and len(losses) == 6
    assert resumed["val_loss"] == whole["val_loss"]
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)
    assert b["config"]["optimizer"] == "muon" and b["config"]["preset"] == "tiny-x"
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_orthogonalised_updates_have_singular_values_near_one():
    g = torch.randn(48, 96, generator=torch.Generator().manual_seed(0)) * torch.logspace(-3, 1, 96)
    assert torch.linalg.cond(g) > 500
    s = torch.linalg.svdvals(orthogonalise(g).float())
    assert s.max() < 1.3 and (s > 0.6).float().mean() > 0.95  # one of 48 lags (0.39): 5 steps trade exactness for speed
    tall = orthogonalise(g.T).float()
    assert tall.shape == (96, 48)


def test_muon_takes_the_blocks_matrices_and_leaves_the_edges_to_adamw():
    model = Denoiser(PRESETS["tiny-x"])
    matrices, rest = split_params(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)].split(".")[0] for p in matrices} == {"blocks", "skips"}
    assert all(p.ndim == 2 for p in matrices)
    left = [names[id(p)] for p in rest if names[id(p)].startswith(("blocks", "skips")) and p.ndim == 2]
    assert left and all(n.endswith("modulation") for n in left)  # adaLN offsets are not layers
    assert len(matrices) + len(rest) == len(list(model.parameters()))


def test_the_batch_probe_keeps_the_fastest_size_and_counts_its_steps(trainset_32, tmp_path, monkeypatch):
    calls = []

    def fake_probe(train_step, batches, device, flops_image, peak, steps=8):
        calls.append(batches)
        for b in batches:
            train_step(b, 0.1)
        return 4, {"steps": 2, "images": 6, "results": {2: {"images_per_s": 1.0}, 4: {"images_per_s": 2.0}}}

    monkeypatch.setattr(limner.train, "probe_batch", fake_probe)
    result = main(config(trainset_32, tmp_path / "p", batch_probe="2,4", steps=5))
    assert calls == [[2, 4]]
    assert result["step"] == 5 and result["images_seen"] == 6 + 3 * 4
    assert result["history"][0] == {
        "step": 2,
        "probe": {2: {"images_per_s": 1.0}, 4: {"images_per_s": 2.0}},
        "batch": 4,
    }


def test_probe_batch_measures_each_size():
    sizes = []

    def step(b: int, lr_scale: float):
        sizes.append(b)
        if b == 8:
            raise torch.OutOfMemoryError("too big")

    best, probe = probe_batch(step, [2, 4, 8], torch.device("cpu"), 1.0, 1.0, steps=2)
    assert best in (2, 4) and probe["results"][8] == "out of memory"
    assert probe["steps"] == 10 and probe["images"] == 5 * 2 + 5 * 4
    assert sizes == [2] * 5 + [4] * 5 + [8]


def test_tone_weight_draws_images_with_a_skin_tone_more_often(trainset_32, tmp_path):
    from types import SimpleNamespace

    from limner.train import record_weights

    toned = SimpleNamespace(tones=[["dark"], [], ["light", "medium"], []])
    assert record_weights(toned, 4.0).tolist() == [4.0, 1.0, 4.0, 1.0]  # type: ignore[arg-type]
    assert record_weights(toned, 1.0) is None  # type: ignore[arg-type]
    assert record_weights(SimpleNamespace(tones=None), 4.0) is None  # type: ignore[arg-type]
    ts = TrainSet.load(trainset_32)
    assert ts.tones is not None and any(ts.tones) and not all(ts.tones)
    uniform = main(config(trainset_32, tmp_path / "uniform", steps=3))
    weighted = main(config(trainset_32, tmp_path / "weighted", steps=3, tone_weight=50.0))
    assert curve(weighted["history"]) != curve(uniform["history"])
