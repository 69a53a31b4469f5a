"""Preference tuning (limner.tune) on the tiny model: the DPO objective's known values, the
pairs reader's limits, and a tune that must move samples toward the image the votes prefer."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from limner.errors import InvalidRequest
from limner.model.checkpoint import load_denoiser
from limner.model.flow import flow_loss
from limner.model.sampling import cfg_denoiser, flow_sigmas, sample_euler
from limner.model.text import TextEncoder, Tokenizer
from limner.tune import TuneConfig, dpo_loss, load_pairs, main, split_by_prompt
from tiny import tiny_weights

PROMPT = "a square emoji"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_weights(tmp_path_factory.mktemp("tiny"), seed=3)


def square(colour: tuple[int, int, int]) -> Image.Image:
    img = Image.new("RGB", (128, 128), "white")
    img.paste(colour, (32, 32, 96, 96))
    return img


def export(folder, rows: list[dict], images: dict[str, Image.Image]):
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for name, im in images.items():
        im.save(folder / "images" / name)
    (folder / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def toy(scale: float):
    """A differentiable stand-in denoiser: x̂₀ = scale · x_σ."""
    return lambda x, s: scale * x


def test_dpo_loss_is_log_two_and_pure_preference_while_policy_is_reference():
    g = torch.Generator().manual_seed(0)
    w, l_, noise = (torch.randn(4, 3, 8, 8, generator=g) for _ in range(3))
    sigma = torch.rand(4, generator=g) * 0.8 + 0.1
    scale = torch.tensor(0.7, requires_grad=True)
    loss, margin = dpo_loss(lambda x, s: scale * x, toy(0.7), w, l_, noise, sigma, beta=100.0)
    assert torch.allclose(loss, torch.full((4,), math.log(2.0))) and torch.equal(margin, torch.zeros(4))
    loss.sum().backward()
    # the gradient is β/4 · ∇[ℓ(x_w) − ℓ(x_l)]: only the preference pulls
    other = torch.tensor(0.7, requires_grad=True)
    model = lambda x, s: other * x  # noqa: E731
    (flow_loss(model, w, noise, sigma) - flow_loss(model, l_, noise, sigma)).sum().mul(100.0 / 4).backward()
    assert scale.grad is not None and other.grad is not None
    torch.testing.assert_close(scale.grad, other.grad)
    # the same image preferred over itself: no gradient at all
    same = torch.tensor(0.7, requires_grad=True)
    dpo_loss(lambda x, s: same * x, toy(0.7), w, w, noise, sigma, beta=100.0)[0].sum().backward()
    assert same.grad is not None and same.grad.abs() < 1e-4 * scale.grad.abs()  # rounding only


def test_dpo_loss_falls_as_the_policy_denoises_the_winner_better_than_the_reference():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(2, 3, 8, 8, generator=g)
    l_ = -w  # x̂₀ = x_σ·k fits w and −w alike; the winner is told apart by a bias toward w
    noise, sigma = torch.randn(2, 3, 8, 8, generator=g), torch.full((2,), 0.5)
    toward_w = lambda x, s: 0.5 * x + 0.3 * w.repeat(2, 1, 1, 1)  # noqa: E731
    loss, margin = dpo_loss(toward_w, toy(0.5), w, l_, noise, sigma, beta=10.0)
    assert (margin < 0).all() and (loss < math.log(2.0)).all()


def test_pairs_stay_inside_their_export_and_images_are_bounded(tmp_path):
    rows = [{"prompt": PROMPT, "winner": "images/a.png", "loser": "images/b.png"}]
    ok = export(tmp_path / "ok", rows, {"a.png": square((255, 0, 0)), "b.png": square((0, 0, 255))})
    pairs = load_pairs(ok, 32)
    assert len(pairs) == 1 and pairs.winners.shape == (1, 3, 32, 32)
    assert pairs.winners[0, 0, 16, 16] == pytest.approx(1.0) and pairs.losers[0, 2, 16, 16] == pytest.approx(1.0)
    outside = tmp_path / "secret.png"
    square((0, 0, 0)).save(outside)
    escape = export(tmp_path / "escape", [{**rows[0], "loser": "../secret.png"}], {"a.png": square((255, 0, 0))})
    with pytest.raises(InvalidRequest, match="not a file in the export"):
        load_pairs(escape, 32)
    (ok / "images" / "huge.png").write_bytes(b"not a png")
    with pytest.raises(InvalidRequest, match="not a readable image"):
        load_pairs(export(ok, [{**rows[0], "loser": "images/huge.png"}], {}), 32)
    with pytest.raises(InvalidRequest, match="arena export"):
        load_pairs(tmp_path / "nothing", 32)
    (ok / "pairs.jsonl").write_text('{"winner": "images/a.png"}\n')
    with pytest.raises(InvalidRequest, match="line 1: not a preference pair"):
        load_pairs(ok, 32)


def test_split_keeps_every_pair_of_a_prompt_on_one_side(tmp_path):
    images = {"a.png": square((255, 0, 0)), "b.png": square((0, 0, 255))}
    rows = [{"prompt": f"prompt {i % 20}", "winner": "images/a.png", "loser": "images/b.png"} for i in range(60)]
    train, val = split_by_prompt(load_pairs(export(tmp_path, rows, images), 16), 0.3)
    assert val is not None and len(train) + len(val) == 60
    assert not set(train.prompts) & set(val.prompts)


def samples(weights, n: int = 6) -> np.ndarray:
    """The tiny model's 32 px samples of PROMPT (seeds 0…n−1, guidance 2), as float arrays."""
    model, _ = load_denoiser(weights)
    model.eval()
    tokens = Tokenizer()([PROMPT, ""])
    with torch.no_grad():
        states, pooled = TextEncoder.load()(tokens.ids, tokens.mask)
    r = model.cfg.resolution
    cond = {
        "text": states[:1].expand(n, -1, -1),
        "text_mask": tokens.mask[:1].expand(n, -1),
        "pooled": pooled[:1].expand(n, -1),
    }
    uncond = {
        "text": states[1:].expand(n, -1, -1),
        "text_mask": tokens.mask[1:].expand(n, -1),
        "pooled": pooled[1:].expand(n, -1),
    }
    noise = torch.stack([torch.randn(3, r, r, generator=torch.Generator().manual_seed(s)) for s in range(n)])
    with torch.no_grad():
        den = cfg_denoiser(model, cond, uncond, 2.0)
        x = sample_euler(den, noise, flow_sigmas(8))
    return x.clamp(-1, 1).numpy()


def test_tuning_moves_samples_toward_the_image_the_votes_prefer(tiny, tmp_path):
    red, blue = square((220, 30, 30)), square((30, 30, 220))
    rows = [{"prompt": PROMPT, "winner": "images/red.png", "loser": "images/blue.png"}] * 8
    pairs = export(tmp_path / "prefs", rows, {"red.png": red, "blue.png": blue})
    r = 32
    target = {
        name: np.asarray(im.resize((r, r), Image.Resampling.BOX), dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1
        for name, im in (("red", red), ("blue", blue))
    }

    def lean(x: np.ndarray) -> float:
        """How much nearer the samples are to red than to blue (mean squared distances)."""
        return float(((x - target["blue"]) ** 2).mean() - ((x - target["red"]) ** 2).mean())

    before = lean(samples(tiny / "denoiser.safetensors"))
    cfg = TuneConfig(
        pairs=str(pairs), init=str(tiny), out=str(tmp_path / "dpo"), steps=40, batch=8, lr=3e-3,
        warmup=2, beta=50.0, ema=0.5, val_share=0.0, save_every=20, log_every=10,
    )  # fmt: skip
    result = main(cfg)
    after = lean(samples(tmp_path / "dpo" / "ema.safetensors"))
    assert after > before + 0.05, (before, after)
    assert result["step"] == 40 and (tmp_path / "dpo" / "checkpoint.pt").exists()
    _, meta = load_denoiser(tmp_path / "dpo" / "ema.safetensors")
    assert meta["tuned"]["method"] == "dpo" and meta["tuned"]["pairs"] == 8


def test_unknown_method_is_refused(tiny, tmp_path):
    with pytest.raises(InvalidRequest, match="method must be one of"):
        main(TuneConfig(pairs=str(tmp_path), init=str(tiny), out=str(tmp_path / "x"), method="ppo"))


def test_export_weights_carries_the_parents_sampling_settings_checked(tiny, tmp_path):
    """A tuned model is exported like any other; --sampling puts the parent's measured settings
    beside it (checked as a model folder's own file is), so it draws as its parent does."""
    from typer.testing import CliRunner

    from limner import cli

    good = tmp_path / "sampling.json"
    good.write_text('{"num_inference_steps": 3, "sigmas": [1.0, 0.8, 0.3], "tone_guidance": 3.0}')
    args = ["export-weights", "--denoiser", str(tiny / "denoiser.safetensors")]
    args += ["--upsampler", str(tiny / "upsampler.safetensors"), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli.app, [*args, "--sampling", str(good)])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "sampling.json").read_text())["sigmas"] == [1.0, 0.8, 0.3]
    from limner.engine.builtin import LimnerBackend

    assert LimnerBackend("tuned", tmp_path / "out", device="cpu").defaults["num_inference_steps"] == 3
    bad = tmp_path / "bad.json"
    bad.write_text('{"sigmas": [1.0, 0.8, 0.3], "num_inference_steps": 6}')
    result = CliRunner().invoke(cli.app, [*args[:-1], str(tmp_path / "out2"), "--sampling", str(bad)])
    assert result.exit_code == 2 and "sigmas has 3 noise levels" in result.output
    assert not (tmp_path / "out2").exists()
