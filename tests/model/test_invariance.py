import pytest
import torch
from torch import nn

from limner.model import invariance
from limner.model.invariance import InvariantConv2d, InvariantLinear, batch_invariant


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_each_sample_gets_what_it_gets_alone_at_every_batch_size(dtype):
    # the denoiser's MLP down-projection: the shape whose bf16 kernel changes with the batch on AMX
    torch.manual_seed(0)
    layer = batch_invariant(nn.Sequential(nn.Linear(1568, 448))).to(dtype)
    x = torch.randn(24, 64, 1568, dtype=dtype)
    with torch.no_grad():
        alone = [layer(x[i : i + 1]) for i in range(len(x))]
        for b in (2, 3, 4, 7, 8, 16, 24):
            together = layer(x[:b])
            assert all(torch.equal(together[i : i + 1], alone[i]) for i in range(b)), f"batch of {b}"


def test_a_batch_dependent_kernel_is_found_and_run_sample_by_sample(monkeypatch):
    calls: list[int] = []

    def drifting_linear(x, weight, bias=None):  # a kernel whose rounding depends on the batch
        calls.append(x.shape[0])
        return torch.nn.functional.linear(x, weight, bias) + 1e-3 * (x.shape[0] - 1)

    monkeypatch.setattr(invariance, "F", type("F", (), {"linear": staticmethod(drifting_linear)}))
    monkeypatch.setattr(invariance, "_verdicts", {})
    layer = batch_invariant(nn.Linear(8, 4))
    x = torch.randn(5, 3, 8)
    with torch.no_grad():
        out = layer(x)
        assert torch.equal(out[2:3], layer(x[2:3]))
        calls.clear()
        layer(x)  # the verdict is remembered: no second probe, five one-sample calls
    assert calls == [1] * 5


def test_an_invariant_kernel_keeps_running_batched(monkeypatch):
    calls: list[int] = []
    real = torch.nn.functional.linear

    def counting_linear(x, weight, bias=None):
        calls.append(x.shape[0])
        return real(x, weight, bias)

    monkeypatch.setattr(invariance, "F", type("F", (), {"linear": staticmethod(counting_linear)}))
    monkeypatch.setattr(invariance, "_verdicts", {(): False})
    monkeypatch.setattr(invariance, "_key", lambda layer, x: ())  # the probe already said: invariant
    layer = batch_invariant(nn.Linear(8, 4))
    with torch.no_grad():
        layer(torch.randn(6, 3, 8))
    assert calls == [6]


def test_layers_keep_their_parameters_and_state_dict_names():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 2))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(3, 3, 8, 8)
    expected = net(x)
    batch_invariant(net)
    assert isinstance(net[0], InvariantConv2d) and isinstance(net[2], InvariantLinear)
    assert net.state_dict().keys() == before.keys()
    assert all(torch.equal(net.state_dict()[k], v) for k, v in before.items())
    torch.testing.assert_close(net(x), expected)
