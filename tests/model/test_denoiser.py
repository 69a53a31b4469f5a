import copy
from dataclasses import replace

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from limner.errors import CheckpointError
from limner.model.checkpoint import init_from, save_weights
from limner.model.denoiser import PRESETS, Denoiser, DenoiserConfig, flops_per_image


def inputs(model: Denoiser, b: int = 2, tokens: int = 6, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    r, w = model.cfg.resolution, model.cfg.text_width
    return {
        "x": torch.randn(b, 3, r, r, generator=g),
        "sigma": torch.rand(b, generator=g),
        "text": torch.randn(b, tokens, w, generator=g),
        "text_mask": torch.ones(b, tokens, dtype=torch.bool),
        "pooled": torch.randn(b, w, generator=g),
    }


def test_patchify_cuts_raster_order_patches_and_unpatchify_inverts_it(tiny_denoiser):
    p, r = tiny_denoiser.cfg.patch, tiny_denoiser.cfg.resolution
    x = torch.randn(2, 3, r, r)
    tokens = tiny_denoiser.patchify(x)
    g = r // p
    assert tokens.shape == (2, g * g, 3 * p * p)
    # token i·g + j is the patch in row i, column j
    assert torch.equal(tokens[1, 1 * g + 2], x[1, :, p : 2 * p, 2 * p : 3 * p].flatten())
    assert torch.equal(tiny_denoiser.unpatchify(tokens), x)


def test_a_fresh_denoiser_predicts_zero_for_every_input():
    """The head starts at zero (every block starts as the identity), so training begins from
    x̂₀ = 0, the mean of the data in [-1, 1]."""
    model = Denoiser(PRESETS["tiny"])
    out = model(**inputs(model))
    assert out.shape == (2, 3, 32, 32)
    assert torch.equal(out, torch.zeros_like(out))


@torch.no_grad()
def test_output_depends_on_noise_level_text_and_pooled_embedding(tiny_denoiser):
    kw = inputs(tiny_denoiser)
    base = tiny_denoiser(**kw)
    assert base.abs().mean() > 0.01
    for name in ("sigma", "text", "pooled"):
        changed = dict(kw, **{name: kw[name] + 0.5})
        assert not torch.allclose(tiny_denoiser(**changed), base, atol=1e-3), name


@torch.no_grad()
def test_padded_text_tokens_have_no_effect(tiny_denoiser):
    kw = inputs(tiny_denoiser, tokens=8)
    kw["text_mask"][:, 5:] = False
    base = tiny_denoiser(**kw)
    noisy_pad = kw["text"].clone()
    noisy_pad[:, 5:] = 100 * torch.randn(2, 3, tiny_denoiser.cfg.text_width)
    assert torch.equal(tiny_denoiser(**dict(kw, text=noisy_pad)), base)
    unmasked = dict(kw, text=noisy_pad, text_mask=torch.ones_like(kw["text_mask"]))
    assert not torch.allclose(tiny_denoiser(**unmasked), base, atol=1e-3)


@torch.no_grad()
def test_no_glyph_canvas_means_a_blank_one(tiny_denoiser):
    kw = inputs(tiny_denoiser)
    r = tiny_denoiser.cfg.resolution
    blank = torch.zeros(2, 1, r, r)
    assert torch.equal(tiny_denoiser(**kw, glyph=None), tiny_denoiser(**kw, glyph=blank))
    text = blank.clone()
    text[:, :, 8:16, 4:28] = 1.0  # a white bar where letters would be
    assert not torch.allclose(tiny_denoiser(**kw, glyph=text), tiny_denoiser(**kw), atol=1e-3)


@torch.no_grad()
def test_each_image_of_a_batch_is_denoised_on_its_own(tiny_denoiser):
    kw = inputs(tiny_denoiser, b=3)
    batched = tiny_denoiser(**kw)
    for i in range(3):
        alone = tiny_denoiser(**{k: v[i : i + 1] for k, v in kw.items()})
        torch.testing.assert_close(alone[0], batched[i], atol=1e-6, rtol=0)


def test_presets_are_named_sizes_that_tile_their_resolution():
    assert list(PRESETS) == ["tiny", "small", "base", "tiny-x", "xs-x", "base-x"]
    for cfg in PRESETS.values():
        assert cfg.resolution % cfg.patch == 0 and cfg.width % cfg.heads == 0
    assert PRESETS["tiny"].tokens == 16 and PRESETS["base"].tokens == 64
    assert DenoiserConfig(**PRESETS["base"].to_dict()) == PRESETS["base"]
    x = PRESETS["base-x"]  # limner-2: limner-1's network plus the parts that start at zero
    assert replace(x, exemplar_channels=0, long_skips=False, out_conv=0) == PRESETS["base"]


@torch.no_grad()
def test_new_parts_start_at_zero_so_older_weights_compute_the_same(tiny_denoiser, tmp_path):
    """limner-2 starts from limner-1: weights without exemplar channels, skips or output conv
    load into a network with them, and it computes exactly what the old one did — with or
    without an exemplar — until training moves the new parts."""
    save_weights(tmp_path / "old.safetensors", tiny_denoiser, "denoiser", dtype=torch.float32)
    grown = Denoiser(PRESETS["tiny-x"])
    fresh = init_from(grown, tmp_path / "old.safetensors")
    assert {k.split(".")[0] for k in fresh} == {"skips", "out_conv"}
    kw = inputs(tiny_denoiser)
    exemplar = torch.rand(2, 4, 32, 32)
    assert torch.equal(grown(**kw, exemplar=exemplar), tiny_denoiser(**kw))
    assert torch.equal(grown(**kw), tiny_denoiser(**kw))


def test_weights_of_another_shape_are_refused(tiny_denoiser, tmp_path):
    save_weights(tmp_path / "old.safetensors", tiny_denoiser, "denoiser")
    with pytest.raises(CheckpointError, match="shape"):
        init_from(Denoiser(DenoiserConfig(resolution=32, width=128, depth=2, heads=2)), tmp_path / "old.safetensors")


@torch.no_grad()
def test_exemplar_skips_and_output_conv_all_change_the_output(tiny_x_denoiser):
    tiny_x = tiny_x_denoiser
    kw = inputs(tiny_x)
    base = tiny_x(**kw)
    exemplar = torch.rand(2, 4, 32, 32)
    assert torch.equal(tiny_x(**kw, exemplar=torch.zeros(2, 4, 32, 32)), base)  # blank = none
    assert not torch.allclose(tiny_x(**kw, exemplar=exemplar), base, atol=1e-3)
    for part in ("skips", "out_conv"):
        ablated = copy.deepcopy(tiny_x)
        for p in getattr(ablated, part).parameters():
            p.zero_()
        assert not torch.allclose(ablated(**kw), base, atol=1e-4), part


@pytest.mark.parametrize(
    "cfg", [PRESETS["tiny"], DenoiserConfig(resolution=32, width=128, depth=3, heads=4), PRESETS["tiny-x"]]
)
def test_flops_per_image_matches_torchs_flop_counter(cfg):
    """The MFU figure in training logs rests on this count; torch counts the linear layers (on
    CPU it does not see inside attention), flops_per_image adds attention, so they agree to a
    few per cent."""
    model = Denoiser(cfg)
    kw = inputs(model, b=2, tokens=24)
    with FlopCounterMode(display=False) as counter:
        model(**kw)
    measured = counter.get_total_flops() / 2
    assert measured == pytest.approx(flops_per_image(cfg, text_tokens=24), rel=0.03)


def test_training_attention_on_the_cpu_matches_the_fused_kernel(tiny_denoiser):
    """Under autograd on the CPU attention runs as plain matmuls (faster to train); without
    it PyTorch's fused kernel. Both compute the same thing, padded tokens masked alike."""
    kw = inputs(tiny_denoiser, tokens=8)
    kw["text_mask"][:, 5:] = False
    with torch.no_grad():
        fused = tiny_denoiser(**kw)
    with torch.enable_grad():
        plain = tiny_denoiser(**kw)
    torch.testing.assert_close(plain, fused, atol=1e-5, rtol=1e-5)
