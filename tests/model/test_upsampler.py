import torch
import torch.nn.functional as F

from limner.model.upsampler import UPSAMPLER_PRESETS, Upsampler, UpsamplerConfig


def test_a_fresh_upsampler_is_exactly_the_bicubic_upscale():
    model = Upsampler(UPSAMPLER_PRESETS["tiny"])
    low = torch.rand(2, 3, 8, 8) * 2 - 1
    out = model(low)
    assert out.shape == (2, 3, 32, 32)
    bicubic = F.interpolate(low, scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.equal(out, bicubic.clamp(-1, 1))


@torch.no_grad()
def test_output_stays_in_range_for_any_input(tiny_upsampler):
    low = torch.randn(2, 3, 8, 8) * 5
    out = tiny_upsampler(low)
    assert out.min() >= -1 and out.max() <= 1
    assert out.shape == (2, 3, 32, 32)


@torch.no_grad()
def test_glyph_canvas_is_read_at_full_resolution_and_acts_locally(tiny_upsampler):
    low = torch.rand(1, 3, 8, 8) * 2 - 1
    blank = torch.zeros(1, 1, 32, 32)
    base = tiny_upsampler(low)
    assert torch.equal(tiny_upsampler(low, None), tiny_upsampler(low, blank))
    dot = blank.clone()
    dot[..., 1, 2] = 1.0  # one full-resolution pixel, inside low-resolution pixel (0, 0)
    diff = (tiny_upsampler(low, dot) - base).abs()[0].amax(0)  # (32, 32)
    assert diff.max() > 1e-4
    # four 3×3 convolutions at low resolution reach 4 low-res pixels (full-res rows 0-19)
    assert diff[:20, :20].max() > 0
    assert diff[20:, :].max() == 0 and diff[:, 20:].max() == 0


def test_config_round_trips_through_its_dict():
    cfg = UPSAMPLER_PRESETS["small"]
    assert UpsamplerConfig(**cfg.to_dict()) == cfg
    assert Upsampler(UpsamplerConfig(glyph_channels=0, channels=8, blocks=1))(torch.zeros(1, 3, 4, 4)).shape == (
        1,
        3,
        16,
        16,
    )
