import json
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

import limner.train
from limner import cli
from limner.model.checkpoint import load_module
from limner.train import TrainConfig, cli_args, lr_at, main

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
