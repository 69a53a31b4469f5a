"""`limner generate` and `limner models`: the engine's commands, run in-process."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_diffusers import DIFFUSERS_NUMPY_WARNING
from typer.testing import CliRunner

from limner import cli
from limner.engine import Engine, GenerationRequest

runner = CliRunner()
WIDE = {"COLUMNS": "250"}  # one table row per line


def written(result) -> list[Path]:
    assert result.exit_code == 0, result.output
    return [Path(line) for line in result.stdout.splitlines()]


def test_generate_with_a_models_file_writes_pngs_and_prints_their_paths(models_toml, tmp_path):
    out = tmp_path / "out"
    args = ["generate", "a red apple, 3D render!", "--models", str(models_toml), "-n", "2"]
    args += ["--seed", "5", "--guidance-scale", "3", "-o", str(out), "--data-dir", str(tmp_path / "data")]
    unmarked = {"LIMNER_WATERMARK": "0", "LIMNER_CONTENT_CREDENTIALS": "0"}  # the engine's pixels, as made
    paths = written(runner.invoke(cli.app, args, env=unmarked))
    assert paths == [out / "a-red-apple--3d-render-5.png", out / "a-red-apple--3d-render-6.png"]
    for path, seed in zip(paths, (5, 6), strict=True):
        with Image.open(path) as im:
            meta = json.loads(im.text["limner"])
            assert im.size == (128, 128)
            assert f"Steps: 3, Sampler: Euler, CFG scale: 3.0, Seed: {seed}," in im.text["parameters"]
            pixels = np.asarray(im.convert("RGB"))
        assert (meta["model"], meta["seed"], meta["num_inference_steps"]) == ("tiny", seed, 3)
    # the CLI is one more entry point to the same engine: the same request gives the same image
    with Engine(models_file=models_toml, batching=False) as engine:
        same = engine.generate(GenerationRequest("a red apple, 3D render!", n=2, seed=5, guidance_scale=3.0))
    assert np.array_equal(np.asarray(same[1].image), pixels)


@pytest.mark.filterwarnings(DIFFUSERS_NUMPY_WARNING)
def test_generate_with_a_diffusers_pipeline_given_by_path(tiny_sd, tmp_path):
    args = ["generate", "a red apple", "--model", str(tiny_sd), "--seed", "1"]
    args += ["--num-inference-steps", "2", "--size", "16x16", "-o", str(tmp_path)]
    paths = written(runner.invoke(cli.app, args))
    assert paths == [tmp_path / "a-red-apple-1.png"]
    with Image.open(paths[0]) as im:
        assert im.size == (16, 16)
        meta = json.loads(im.text["limner"])
    assert (meta["backend"], meta["model"], meta["sampler"]) == (
        "diffusers",
        str(tiny_sd),
        "EulerDiscreteScheduler",
    )


def test_generate_edits_an_image_inside_a_mask(models_toml, tmp_path):
    src = Image.fromarray(np.random.default_rng(0).integers(0, 256, (128, 128, 3), np.uint8))
    mask = Image.new("L", (128, 128), 0)
    mask.paste(255, (0, 0, 64, 128))
    src.save(tmp_path / "src.png")
    mask.save(tmp_path / "mask.png")
    args = ["generate", "a cat", "--models", str(models_toml), "--image", str(tmp_path / "src.png")]
    args += ["--mask", str(tmp_path / "mask.png"), "--seed", "2", "-o", str(tmp_path / "out")]
    (path,) = written(runner.invoke(cli.app, args))
    with Image.open(path) as im:
        out = np.asarray(im.convert("RGB"))
        assert json.loads(im.text["limner"])["mode"] == "inpaint"
    assert np.array_equal(out[:, 64:], np.asarray(src)[:, 64:])
    assert not np.array_equal(out[:, :64], np.asarray(src)[:, :64])


def test_generate_errors_are_one_line_and_exit_1(models_toml, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    argv = ["limner", "generate", "a", "--models", str(models_toml), "--size", "64x64", "-o", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "error: model tiny makes 128x128, 32x32 images, not 64x64" in err
    assert "Traceback" not in err and not out.exists()


@pytest.mark.filterwarnings(DIFFUSERS_NUMPY_WARNING)
def test_models_lists_every_model_with_sizes_and_modes(models_toml):
    result = runner.invoke(cli.app, ["models", "--models", str(models_toml), "--load"], env=WIDE)
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "│" in line]
    tiny = next(r for r in rows if "tiny (default)" in r)
    sd = next(r for r in rows if "tiny-sd" in r)
    assert "limner" in tiny and "128x128, 32x32" in tiny and "text2img, img2img" in tiny
    assert "diffusers" in sd and "16x16" in sd


def test_models_shows_a_broken_model_without_failing(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "models.toml").write_text('[models.broken]\nbackend = "limner"\npath = "empty"\n')
    result = runner.invoke(cli.app, ["models", "--models", str(tmp_path / "models.toml"), "--load"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "broken" in result.stdout and "no weights at" in result.stdout


def test_models_says_which_will_load_without_loading_any(models_toml, tmp_path, monkeypatch):
    from limner.engine.engine import Engine

    def no_loading(*args, **kwargs):
        raise AssertionError("limner models loaded a model")

    monkeypatch.setattr(Engine, "backend", no_loading)
    (tmp_path / "empty").mkdir()
    broken = tmp_path / "models.toml"
    broken.write_text(
        models_toml.read_text() + '\n[models.broken]\nbackend = "limner"\npath = "' + str(tmp_path / "empty") + '"\n'
    )
    result = runner.invoke(cli.app, ["models", "--models", str(broken)], env=WIDE)
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "│" in line]
    assert "ready" in next(r for r in rows if "tiny (default)" in r)
    assert "ready" in next(r for r in rows if "tiny-sd" in r)
    row = next(r for r in rows if "broken" in r)
    assert "will not load" in row and "no readable Limner denoiser" in row
