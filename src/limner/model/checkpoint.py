"""Weights on disk.

Inference weights are safetensors files whose metadata carries the model's config, so a file is
enough to rebuild its network. Large ones may be split into ``NAME-00001-of-0000N.safetensors``
shards (to travel in pieces of at most 16 MiB). Training checkpoints (model, EMA, optimizer,
step, RNG state …) are plain ``torch.save`` files inside a run folder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from limner.errors import CheckpointError
from limner.model.denoiser import Denoiser, DenoiserConfig
from limner.model.upsampler import Upsampler, UpsamplerConfig

FORMAT = "limner-1"
KINDS = {"denoiser": (Denoiser, DenoiserConfig), "upsampler": (Upsampler, UpsamplerConfig)}


def save_atomic(obj: object, path: Path) -> None:
    """``torch.save`` beside ``path``, then swapped in: a crash never leaves a half-written file,
    and a reader that has the old file memory-mapped keeps reading it."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def save_weights(
    path: Path,
    module: torch.nn.Module,
    kind: str,
    meta: dict | None = None,
    dtype: torch.dtype = torch.float16,
    max_shard_bytes: int | None = None,
) -> list[Path]:
    """Write ``module``'s weights (cast to ``dtype``) with its config; return the files written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = module.cfg.to_dict()  # type: ignore[union-attr,operator]
    tensors = {
        k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
        for k, v in module.state_dict().items()
    }
    metadata = {
        "format": FORMAT,
        "kind": kind,
        "config": json.dumps(config),
        **{k: json.dumps(v) for k, v in (meta or {}).items()},
    }
    groups: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for k, v in tensors.items():
        nbytes = v.numel() * v.element_size()
        if max_shard_bytes and groups[-1] and size + nbytes > max_shard_bytes:
            groups.append({})
            size = 0
        groups[-1][k] = v
        size += nbytes
    for old in path.parent.glob(f"{path.stem}-*-of-*.safetensors"):
        old.unlink()
    if len(groups) == 1:
        save_file(groups[0], str(path), metadata=metadata)
        return [path]
    paths = []
    for i, g in enumerate(groups, 1):
        p = path.with_name(f"{path.stem}-{i:05d}-of-{len(groups):05d}.safetensors")
        save_file(g, str(p), metadata=metadata)
        paths.append(p)
    if path.exists():
        path.unlink()
    return paths


def weight_files(path: Path) -> list[Path]:
    """The file itself, or its shards when only ``NAME-0000i-of-0000N.safetensors`` exist."""
    path = Path(path)
    if path.exists():
        return [path]
    shards = sorted(path.parent.glob(f"{path.stem}-[0-9]*-of-[0-9]*.safetensors"))
    if not shards:
        raise CheckpointError(f"no weights at {path} (nor shards {path.stem}-0000i-of-0000N.safetensors)")
    n = int(re.search(r"-of-(\d+)", shards[0].name).group(1))  # type: ignore[union-attr]
    if len(shards) != n:
        raise CheckpointError(f"{path}: found {len(shards)} of {n} shards; the download is incomplete")
    return shards


def quantize_int8(
    tensors: dict[str, torch.Tensor], group: int = 32, only: tuple[str, ...] | None = None
) -> dict[str, torch.Tensor]:
    """Matrices as int8 with one float16 scale per ``group`` weights of a row (``NAME.int8`` and
    ``NAME.scale``), the rest float16: half the bytes, for weights that must travel light (an
    initialisation or a pruned text encoder sent to a GPU machine). ``only``: quantise just the
    matrices whose names start so. ``dequantize_int8`` (and ``read_weights``) undo it."""
    out: dict[str, torch.Tensor] = {}
    for k, v in tensors.items():
        chosen = only is None or k.startswith(only)
        if chosen and v.is_floating_point() and v.dim() == 2 and v.shape[1] % group == 0:
            g = v.float().reshape(v.shape[0], -1, group)  # (out, in/group, group)
            scale = g.abs().amax(-1, keepdim=True).clamp(min=1e-8) / 127
            out[k + ".int8"] = (g / scale).round().to(torch.int8).reshape(v.shape)
            out[k + ".scale"] = scale.half()
        else:
            out[k] = v.half() if v.is_floating_point() else v
    return out


def dequantize_int8(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Float32 weights again from ``quantize_int8``'s (other tensors as they are)."""
    out = {k: v for k, v in tensors.items() if not k.endswith((".int8", ".scale"))}
    for k, q in tensors.items():
        if k.endswith(".int8"):
            name = k.removesuffix(".int8")
            scale = tensors[name + ".scale"].float()  # (out, in/group, 1)
            out[name] = (q.float().reshape(scale.shape[0], scale.shape[1], -1) * scale).reshape(q.shape)
    return out


def save_int8(path: Path, module: torch.nn.Module, kind: str, meta: dict | None = None) -> Path:
    """``module``'s weights quantised by ``quantize_int8``, in a file ``read_weights`` loads."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "format": FORMAT,
        "kind": kind,
        "config": json.dumps(module.cfg.to_dict()),  # type: ignore[union-attr,operator]
        **{k: json.dumps(v) for k, v in (meta or {}).items()},
    }
    sd = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    save_file(quantize_int8(sd), str(path), metadata=metadata)
    return path


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a weights file or its shards (int8 ones come back as floats)."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, str] = {}
    for f in weight_files(path):
        try:
            with safe_open(str(f), "pt") as st:
                meta = st.metadata() or {}
                for k in st.keys():  # noqa: SIM118 (safe_open is not a mapping)
                    tensors[k] = st.get_tensor(k)
        except Exception as e:
            raise CheckpointError(f"cannot read {f}: {e}") from e
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a Limner weights file (format {meta.get('format')!r})")
    return (dequantize_int8(tensors) if any(k.endswith(".int8") for k in tensors) else tensors), meta


def load_module(path: Path, kind: str, dtype: torch.dtype = torch.float32) -> tuple[torch.nn.Module, dict]:
    """Rebuild a network from a weights file; return it (eval mode) and the file's metadata."""
    tensors, meta = read_weights(path)
    if meta.get("kind") != kind:
        raise CheckpointError(f"{path} holds a {meta.get('kind')!r}, not a {kind!r}")
    module_cls, config_cls = KINDS[kind]
    module = module_cls(config_cls(**json.loads(meta["config"])))
    try:
        module.load_state_dict({k: v.to(dtype) for k, v in tensors.items()})
    except RuntimeError as e:
        raise CheckpointError(f"{path} does not match its own config: {e}") from e
    extra = {k: json.loads(v) for k, v in meta.items() if k not in ("format", "kind")}
    return module.eval().requires_grad_(False), extra


def init_from(module: Denoiser, path: Path) -> list[str]:
    """Load weights trained for a narrower denoiser into ``module``, which may add the optional
    zero-initialised parts (exemplar input channels, long skips, output convolution): those keep
    their zero start, so ``module`` computes exactly what the file's network did. Returns the
    names of the parts that were not in the file."""
    tensors, meta = read_weights(path)
    if meta.get("kind") != "denoiser":
        raise CheckpointError(f"{path} holds a {meta.get('kind')!r}, not a denoiser")
    own = module.state_dict()
    merged, fresh = {}, []
    for k, v in own.items():
        if k not in tensors:
            fresh.append(k)
            merged[k] = v
            continue
        t = tensors[k].to(v.dtype)
        if k == "patch_embed.0.weight" and t.shape[0] == v.shape[0] and t.shape[1] < v.shape[1]:
            t = torch.cat([t, v[:, t.shape[1] :]], dim=1)  # new input channels come last
        if t.shape != v.shape:
            raise CheckpointError(f"{path}: {k} has shape {tuple(t.shape)}, the model needs {tuple(v.shape)}")
        merged[k] = t
    unknown = sorted(set(tensors) - set(own))
    if unknown:
        raise CheckpointError(f"{path} has weights this model lacks: {', '.join(unknown[:5])}")
    module.load_state_dict(merged)
    return fresh


def load_denoiser(path: Path, dtype: torch.dtype = torch.float32) -> tuple[Denoiser, dict]:
    module, meta = load_module(path, "denoiser", dtype)
    assert isinstance(module, Denoiser)
    return module, meta


def load_upsampler(path: Path, dtype: torch.dtype = torch.float32) -> tuple[Upsampler, dict]:
    module, meta = load_module(path, "upsampler", dtype)
    assert isinstance(module, Upsampler)
    return module, meta
