"""Batch invariance: a sample's numbers must not depend on what else shares its batch.

The engine batches concurrent requests into one sampling loop and promises each the image it
would get alone (the same seed makes the same pixels, whoever else is drawing). Matrix kernels
do not promise that: oneDNN on an AMX Xeon, for one, changes how it blocks the reduction of a
bfloat16 ``Linear`` once the batch passes a few hundred rows (K ≥ 896 at 2 threads: 1568 → 448
from 224 rows), and MKL's float32 GEMM does the same at other sizes. The rows still agree to
rounding, but not bit for bit, and a one-level change in a pixel is a different image.

``batch_invariant(module)`` makes every ``Linear`` and ``Conv2d`` in a module check, once per
input shape (batch size included), dtype, device, autocast state and thread count, whether its
kernel gives each sample of the batch exactly what it gives the sample alone, on random data
of that shape. Where it does not, that layer runs sample by sample from then on; elsewhere it
runs batched as before. On the 2-core AMX machine the denoiser's 8 ``K = 1568`` layers go per
sample, at ~6 % of a batched step; a machine whose kernels are invariant pays one probe per
shape and nothing after.
"""

from __future__ import annotations

import threading

import torch
import torch.nn.functional as F
from torch import nn

_verdicts: dict[tuple, bool] = {}  # layer signature + input → does batching change a sample?
_lock = threading.Lock()


def _key(layer: nn.Module, x: torch.Tensor) -> tuple:
    autocast = torch.is_autocast_enabled(x.device.type)
    cast = torch.get_autocast_dtype(x.device.type) if autocast else None
    weight = layer.weight
    assert isinstance(weight, torch.Tensor)
    return (
        type(layer),
        tuple(weight.shape),
        weight.dtype,
        tuple(x.shape),
        x.dtype,
        str(x.device),
        cast,
        torch.get_num_threads(),
    )


def _per_sample(op, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([op(x[i : i + 1]) for i in range(x.shape[0])])


def _batching_changes_samples(layer: nn.Module, op, x: torch.Tensor) -> bool:
    """The verdict for ``x``'s shape, probed once on random data of that shape."""
    key = _key(layer, x)
    verdict = _verdicts.get(key)
    if verdict is None:
        with torch.no_grad():
            probe = torch.randn(x.shape, generator=torch.Generator().manual_seed(0)).to(x.device, x.dtype)
            verdict = not torch.equal(op(probe), _per_sample(op, probe))
        with _lock:
            _verdicts[key] = verdict
    return verdict


class InvariantLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def op(t: torch.Tensor) -> torch.Tensor:
            return F.linear(t, self.weight, self.bias)

        if x.dim() < 2 or x.shape[0] < 2 or not _batching_changes_samples(self, op, x):
            return op(x)
        return _per_sample(op, x)


class InvariantConv2d(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def op(t: torch.Tensor) -> torch.Tensor:
            return self._conv_forward(t, self.weight, self.bias)

        if x.dim() < 4 or x.shape[0] < 2 or not _batching_changes_samples(self, op, x):
            return op(x)
        return _per_sample(op, x)


def batch_invariant(module: nn.Module) -> nn.Module:
    """Make ``module``'s Linear and Conv2d layers batch-invariant in place (same parameters,
    same state-dict names); returns the module. For inference: training gains nothing from it."""
    for m in module.modules():
        if type(m) is nn.Linear:
            m.__class__ = InvariantLinear
        elif type(m) is nn.Conv2d:
            m.__class__ = InvariantConv2d
    return module
