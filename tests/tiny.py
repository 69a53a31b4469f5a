"""The one recipe for a tiny Limner model on disk, for every test that needs weights: an untrained
32 px denoiser and its ×4 upsampler (128 px images), every weight perturbed so that images depend
on seed, prompt and guidance (fresh zero-initialised layers would paint flat grey and hide bugs).
Imported by name (pytest puts ``tests/`` on the path); torch is imported only when called."""

from __future__ import annotations

from pathlib import Path


def tiny_weights(path: Path, seed: int = 0, preset: str = "tiny", meta: dict | None = None) -> Path:
    """Write the tiny model's ``denoiser.safetensors`` and ``upsampler.safetensors`` into ``path``
    (``preset``: "tiny-x" for the exemplar variant; ``meta``: more metadata for the denoiser)."""
    import torch

    from limner.model.checkpoint import save_weights
    from limner.model.denoiser import PRESETS, Denoiser
    from limner.model.upsampler import UPSAMPLER_PRESETS, Upsampler

    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        denoiser, upsampler = Denoiser(PRESETS[preset]), Upsampler(UPSAMPLER_PRESETS["tiny"])
    with torch.no_grad():
        for p in [*denoiser.parameters(), *upsampler.parameters()]:
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    save_weights(path / "denoiser.safetensors", denoiser, "denoiser", {"preset": preset, "steps": 0, **(meta or {})})
    save_weights(path / "upsampler.safetensors", upsampler, "upsampler")
    return path
