import torch

from limner.model.denoiser import PRESETS, Denoiser
from limner.model.flow import SIGMA_FLOOR, add_noise, flow_loss, sample_sigma
from limner.model.sampling import cfg_denoiser, flow_sigmas, sample_euler


def test_the_path_runs_from_the_image_to_pure_noise():
    x0, noise = torch.rand(3, 3, 4, 4), torch.randn(3, 3, 4, 4)
    out = add_noise(x0, noise, torch.tensor([0.0, 1.0, 0.25]))
    assert torch.equal(out[0], x0[0])
    assert torch.equal(out[1], noise[1])
    torch.testing.assert_close(out[2], 0.75 * x0[2] + 0.25 * noise[2])


def test_sigma_is_logit_normal_and_seeded():
    a = sample_sigma(4000, torch.Generator().manual_seed(0))
    b = sample_sigma(4000, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert a.min() > 0 and a.max() < 1
    assert abs(a.median().item() - 0.5) < 0.03
    shifted = sample_sigma(4000, torch.Generator().manual_seed(0), mean=1.0)
    assert abs(shifted.median().item() - torch.sigmoid(torch.tensor(1.0)).item()) < 0.03


def test_loss_is_the_velocity_error_with_a_clamped_weight():
    x0, noise = torch.zeros(3, 3, 4, 4), torch.randn(3, 3, 4, 4)
    sigma = torch.tensor([0.5, 0.01, 1.0])

    def off_by(delta: float):
        return lambda x, s: torch.full_like(x, delta)

    assert torch.equal(flow_loss(lambda x, s: x0, x0, noise, sigma), torch.zeros(3))
    loss = flow_loss(off_by(0.1), x0, noise, sigma)
    expected = torch.tensor([0.1 / 0.5, 0.1 / SIGMA_FLOOR, 0.1 / 1.0]) ** 2
    torch.testing.assert_close(loss, expected)


def targets(r: int = 32) -> torch.Tensor:
    """Four flat drawings in [-1, 1]: a red disc, a blue square, green stripes, a triangle."""
    yy, xx = torch.meshgrid(torch.arange(r), torch.arange(r), indexing="ij")

    def draw(bg: list[float], fg: list[float], inside: torch.Tensor) -> torch.Tensor:
        img = torch.tensor(bg, dtype=torch.float32)[:, None, None].expand(3, r, r).clone()
        img[:, inside] = torch.tensor(fg, dtype=torch.float32)[:, None]
        return img

    return torch.stack(
        [
            draw([1, 1, 1], [1, -1, -1], (yy - 15.5) ** 2 + (xx - 15.5) ** 2 < 100),
            draw([-1, -1, -1], [-1, -1, 1], (yy > 8) & (yy < 24) & (xx > 8) & (xx < 24)),
            draw([-1, -1, -1], [-1, 1, -1], (xx // 4) % 2 == 0),
            draw([0, -1, 0.5], [1, 1, -1], (yy > 6) & ((xx - 16).abs() < (yy - 6) * 0.6)),
        ]
    )  # (4, 3, 32, 32)


def test_tiny_preset_overfits_four_captioned_images(text_encoder, tokenizer):
    """Train the tiny preset with flow_loss on four images with their captions; sampling each
    caption from fresh noise must then draw its own image."""
    captions = [
        "a red disc on white",
        "a blue square on black",
        "green vertical stripes",
        "a yellow triangle on purple",
    ]
    tokens = tokenizer(captions)
    with torch.no_grad():
        states, pooled = text_encoder(tokens.ids, tokens.mask)
    x0 = targets()
    torch.manual_seed(0)
    model = Denoiser(PRESETS["tiny"])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    rows = torch.arange(4).repeat(4)  # each image four times a step, with different noise
    steps = 300
    for step in range(steps):
        for group in opt.param_groups:  # short warm-up, then linear decay to zero
            group["lr"] = 3e-3 * min(1.0, (step + 1) / 20) * (1 - step / steps)
        noise = torch.randn(len(rows), 3, 32, 32, generator=g)
        sigma = sample_sigma(len(rows), g, mean=1.5)  # weight high noise: samples start there

        def denoise(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
            return model(x, s, states[rows], tokens.mask[rows], pooled[rows])

        loss = flow_loss(denoise, x0[rows], noise, sigma).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    model.eval()
    start = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    cond = {"text": states, "text_mask": tokens.mask, "pooled": pooled}
    with torch.no_grad():
        out = sample_euler(cfg_denoiser(model, cond, None, 1.0), start, flow_sigmas(10))
    error = (out - x0).abs().flatten(1).mean(1)  # (4,) mean abs error per image, range 2
    noise_error = (start - x0).abs().mean()
    assert noise_error > 1.0
    assert error.max() < 0.3 and error.mean() < 0.15, error
    # and each sample is its own caption's image, not another's
    cross = (out[:, None] - x0[None]).abs().flatten(2).mean(2)  # (4, 4)
    assert torch.equal(cross.argmin(1), torch.arange(4))
