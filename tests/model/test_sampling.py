import pytest
import torch

from limner.model.sampling import SAMPLERS, cfg_denoiser, flow_sigmas


def test_flow_sigmas_run_from_start_to_zero_strictly_decreasing():
    for shift in (1.0, 3.0):
        s = flow_sigmas(10, shift=shift)
        assert s.shape == (11,) and s.dtype == torch.float32
        assert s[0] == 1.0 and s[-1] == 0.0
        assert (s[1:] < s[:-1]).all()
    torch.testing.assert_close(flow_sigmas(4), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))
    # a shift spends more of the steps at high noise
    assert (flow_sigmas(10, shift=3.0)[1:-1] > flow_sigmas(10)[1:-1]).all()
    for shift in (1.0, 3.0):  # image-to-image starts part-way: at its strength, whatever the shift
        partial = flow_sigmas(5, shift=shift, start=0.6)
        assert partial[0] == pytest.approx(0.6) and partial[-1] == 0.0 and len(partial) == 6
        assert (partial[1:] < partial[:-1]).all()


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_a_fixed_prediction_is_reached_exactly_along_the_straight_path(name):
    """If the network always predicts the same x̂₀, the flow is a straight line from the noise to
    x̂₀: every sampler must follow it and end exactly on x̂₀."""
    g = torch.Generator().manual_seed(0)
    target, noise = torch.randn(2, 3, 8, 8, generator=g), torch.randn(2, 3, 8, 8, generator=g)
    sigmas = flow_sigmas(6, shift=2.0)
    calls, seen = [], []

    def denoise(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        assert s.shape == (2,)
        calls.append(float(s[0]))
        return target

    def callback(i: int, x: torch.Tensor, x0: torch.Tensor) -> None:
        seen.append(i)
        on_path = (1 - sigmas[i]) * target + sigmas[i] * noise
        torch.testing.assert_close(x, on_path, atol=1e-5, rtol=0)

    out = SAMPLERS[name](denoise, noise.clone(), sigmas, callback=callback)
    assert torch.equal(out, target)
    assert seen == list(range(6))
    assert len(calls) == (11 if name == "heun" else 6)  # Heun: two evaluations but the last


def gaussian_denoiser(mu: float, tau: float):
    """The exact E[x₀ | x_σ] for data x₀ ~ N(mu, tau²) on the path x_σ = (1−σ)x₀ + σε; its flow
    carries ε to mu + tau·ε, so samplers can be checked against a known answer."""

    def denoise(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        s = s.view(-1, *([1] * (x.dim() - 1))).double()
        a = 1 - s
        return mu + a * tau**2 / (a**2 * tau**2 + s**2) * (x - a * mu)

    return denoise


def test_samplers_converge_to_the_exact_flow_at_their_order():
    mu, tau = 0.3, 0.5
    eps = torch.randn(8, 3, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = mu + tau * eps

    def error(name: str, steps: int) -> float:
        out = SAMPLERS[name](gaussian_denoiser(mu, tau), eps.clone(), flow_sigmas(steps).double())
        return (out - exact).abs().max().item()

    euler = [error("euler", n) for n in (10, 40, 160)]
    heun = [error("heun", n) for n in (10, 40, 160)]
    dpm = [error("dpmpp_2m", n) for n in (10, 40, 160)]
    # first order: 4× the steps, about a quarter of the error; second order: about a 16th
    assert euler[0] / euler[1] > 3 and euler[1] / euler[2] > 3
    assert heun[0] / heun[1] > 12 and heun[1] / heun[2] > 12
    assert dpm[1] / dpm[2] > 8 and dpm[0] > dpm[1]
    assert heun[0] < euler[0] / 5 and dpm[1] < euler[1] / 5


def test_a_raising_callback_stops_sampling():
    calls = []

    def denoise(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        calls.append(s)
        return torch.zeros_like(x)

    def stop_at_two(i: int, x: torch.Tensor, x0: torch.Tensor) -> None:
        if i == 2:
            raise KeyboardInterrupt

    for sample in SAMPLERS.values():
        calls.clear()
        with pytest.raises(KeyboardInterrupt):
            sample(denoise, torch.randn(1, 3, 4, 4), flow_sigmas(10), callback=stop_at_two)
        assert len(calls) == (5 if sample is SAMPLERS["heun"] else 3)


# classifier-free guidance ---------------------------------------------------------------------


def toy_model(x: torch.Tensor, s: torch.Tensor, text: torch.Tensor, glyph=None) -> torch.Tensor:
    """Any function of the batch row's own inputs, different for different text."""
    return torch.tanh(x * text[:, :, None, None] + s[:, None, None, None])


def counting_model():
    """``toy_model`` that records the batch size of each call."""
    batches: list[int] = []

    def counting(x: torch.Tensor, s: torch.Tensor, **kw) -> torch.Tensor:
        batches.append(len(x))
        return toy_model(x, s, **kw)

    return counting, batches


@pytest.fixture
def guidance_inputs():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 4, 4, generator=g)
    cond = {"text": torch.randn(3, 2, generator=g), "glyph": None}
    uncond = {"text": torch.randn(3, 2, generator=g), "glyph": None}
    return x, torch.full((3,), 0.7), cond, uncond


def test_guidance_one_is_exactly_the_conditional_model_in_one_pass(guidance_inputs):
    x, s, cond, uncond = guidance_inputs
    counting, batches = counting_model()

    out = cfg_denoiser(counting, cond, uncond, 1.0)(x, s)
    assert torch.equal(out, toy_model(x, s, **cond))
    assert batches == [3]  # no unconditional half was computed
    assert torch.equal(cfg_denoiser(toy_model, cond, None, 5.0)(x, s), toy_model(x, s, **cond))


def test_guidance_extrapolates_from_the_unconditional_prediction(guidance_inputs):
    x, s, cond, uncond = guidance_inputs
    c, u = toy_model(x, s, **cond), toy_model(x, s, **uncond)
    torch.testing.assert_close(cfg_denoiser(toy_model, cond, uncond, 4.0)(x, s), u + 4 * (c - u))
    torch.testing.assert_close(cfg_denoiser(toy_model, cond, uncond, 0.0)(x, s), u)


def test_per_image_guidance_equals_each_image_guided_alone(guidance_inputs):
    x, s, cond, uncond = guidance_inputs
    scales = [0.0, 2.5, 7.0]
    batched = cfg_denoiser(toy_model, cond, uncond, torch.tensor(scales).view(3, 1, 1, 1))(x, s)
    for i, scale in enumerate(scales):
        one = {k: None if v is None else v[i : i + 1] for k, v in cond.items()}
        one_u = {k: None if v is None else v[i : i + 1] for k, v in uncond.items()}
        alone = cfg_denoiser(toy_model, one, one_u, scale)(x[i : i + 1], s[i : i + 1])
        torch.testing.assert_close(batched[i : i + 1], alone)


def test_guidance_outside_its_interval_runs_the_conditional_row_alone(guidance_inputs):
    x, _, cond, uncond = guidance_inputs
    counting, batches = counting_model()

    guided = cfg_denoiser(counting, cond, uncond, 4.0, interval=(0.2, 0.8))
    for level, rows in ((0.9, 3), (0.8, 6), (0.5, 6), (0.2, 6), (0.1, 3)):  # the ends are inside
        s = torch.full((3,), level)
        batches.clear()
        out = guided(x, s)
        assert batches == [rows], level
        c, u = toy_model(x, s, **cond), toy_model(x, s, **uncond)
        torch.testing.assert_close(out, c if rows == 3 else u + 4 * (c - u))


def test_a_contrast_row_adds_guidance_along_what_its_inputs_lack(guidance_inputs):
    """x̂ = x̂_u + w·(x̂_c − x̂_u) + w_t·(x̂_c − x̂_t) for the contrasted rows, in the same one call;
    the other rows as without it; outside the guidance interval the conditional row alone."""
    x, s, cond, uncond = guidance_inputs
    toneless = {"text": torch.tensor([[0.3, -0.2]])}
    rows, weight = torch.tensor([1]), torch.full((1, 1, 1, 1), 2.5)
    counting, batches = counting_model()
    den = cfg_denoiser(counting, cond, uncond, 4.0, (0.2, 0.8), contrast=(toneless, rows, weight))
    out = den(x, s)
    c, u = toy_model(x, s, **cond), toy_model(x, s, **uncond)
    t = toy_model(x[1:2], s[1:2], text=toneless["text"])
    expected = u + 4.0 * (c - u)
    expected[1:2] += 2.5 * (c[1:2] - t)
    torch.testing.assert_close(out, expected)
    assert batches == [7]  # 3 unconditional, 3 conditional, 1 toneless
    assert torch.equal(den(x, torch.full((3,), 0.9)), toy_model(x, torch.full((3,), 0.9), **cond))
