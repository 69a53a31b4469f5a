"""Train the Limner denoiser: one script, top to bottom, on a CPU or on one or many GPUs.

    limner train --preset small --data data/corpus --out runs/small
    torchrun --nproc-per-node 8 -m limner.train --preset base --data pack/trainset-64-train.npz ...

Everything needed to resume is in ``OUT/checkpoint.pt`` (model, EMA, optimizer, step, config,
RNG states, history); ``OUT/ema.safetensors`` holds inference weights. Mixed precision is
bfloat16 autocast on both devices (AMX on this CPU, tensor cores on GPUs).
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image

from limner.data import exemplars as X
from limner.data.exemplars import Exemplars, subset_of
from limner.data.trainset import TrainSet, composite, version_of
from limner.model.checkpoint import init_from, save_atomic, save_weights
from limner.model.denoiser import PRESETS, Denoiser, DenoiserConfig, flops_per_image
from limner.model.flow import flow_loss, sample_sigma
from limner.model.muon import Muon, split_params
from limner.model.sampling import cfg_denoiser, flow_sigmas, sample_euler
from limner.model.text import CaptionStore, TextEncoder, Tokenizer


def bf16_peak(device: torch.device) -> float:
    """This machine's bf16 matmul rate (FLOP/s), measured now: the yardstick for model-FLOP
    utilisation (machines differ: an AMX CPU does ~2.2 TFLOP/s, a CPU without AMX ~0.4)."""
    n = 2048 if device.type == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    (a @ a).sum().item()
    t = time.perf_counter()
    for _ in range(3):
        (a @ a).sum().item()
    return 3 * 2 * n**3 / (time.perf_counter() - t)


SAMPLE_PROMPTS = [
    "a red apple, 3D render",
    "a smiling cat face, flat icon",
    "a rocket, 3D style",
    "thumbs up, dark skin tone, 3D render",
    "a green evergreen tree, cartoon emoji",
    "a yellow star on a plain navy blue background",
    "a blue car, flat vector illustration",
    'a poster with the title "OPEN", bold lettering, on a red background',
]


@dataclass
class TrainConfig:
    preset: str = "small"
    data: str = "data/corpus"  # a corpus folder (packed on first use) or a trainset-R-train.npz
    out: str = "runs/small"
    steps: int = 100_000
    minutes: float | None = None  # wall-clock budget; the LR schedule follows whichever ends first
    batch: int = 64  # global batch, split across processes
    lr: float = 5e-4
    warmup: int = 500
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema: float = 0.999
    caption_dropout: float = 0.1
    glyph_dropout: float = 0.25  # typography samples trained without their glyph canvas
    exemplar_dropout: float = 0.25  # samples trained without their exemplar (the text-only path)
    arch: str = ""  # JSON overrides of the preset's DenoiserConfig, e.g. '{"long_skips": false}'
    optimizer: str = "adamw"  # or "muon": Muon on the blocks' matrices, AdamW on the rest
    subset: float = 1.0  # train on this share of the concepts (hash-chosen): calibration runs
    tone_weight: float = 1.0  # images with a skin tone are drawn this many times as often as the rest
    keep_every: int = 0  # also keep the EMA weights of every N-th step in OUT/snapshots/
    sigma_mean: float = 0.0
    sigma_std: float = 1.0
    flip: bool = True
    sample_every: int = 500
    save_every: int = 500
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    compile: bool = False
    batch_probe: str = ""  # e.g. "1024,2048": try these batch sizes first and keep the fastest
    text_encoder: str | None = None  # a pruned encoder file (GPU packs); default: the wheel's
    tokenizer: str | None = None
    init: str | None = None  # start from inference weights (e.g. ema.safetensors of another run)
    resume: bool = False
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# helpers


def setup_distributed(cfg: TrainConfig) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    cuda = torch.cuda.is_available() and cfg.device in ("auto", "cuda")
    if world > 1:
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        device = torch.device("cpu")
    return rank, world, device


def model_config(cfg: TrainConfig) -> DenoiserConfig:
    """The preset, with the run's ``arch`` overrides."""
    return replace(PRESETS[cfg.preset], **(json.loads(cfg.arch) if cfg.arch else {}))


def resolve_data(cfg: TrainConfig, resolution: int, split: str) -> Path:
    """A packed trainset for ``split``: the given file (its sibling for val) or one cached in the
    corpus, packed again when it predates foregrounds (version 2)."""
    data = Path(cfg.data)
    if data.suffix == ".npz":
        return data if split == "train" else data.with_name(data.name.replace("-train.npz", f"-{split}.npz"))
    path = data / f"trainset-{resolution}-{split}.npz"
    if not path.exists() or version_of(path) < 2:
        from limner.data.trainset import pack

        print(f"packing {split} split of {data} at {resolution}px → {path}", file=sys.stderr)
        pack(data, path, resolution, split)
    return path


def record_weights(train: TrainSet, tone_weight: float) -> torch.Tensor | None:
    """How often each record is drawn, relative to the rest: ``tone_weight`` for an image with a
    skin tone, 1 for any other; None (uniform) when that changes nothing."""
    if tone_weight == 1.0 or not train.tones:
        return None
    return torch.tensor([tone_weight if t else 1.0 for t in train.tones])


def lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up, constant, then linear decay to 10 % over the last fifth of the run."""
    warm = min(1.0, (step + 1) / max(1, cfg.warmup))
    decay = 1.0 if progress < 0.8 else max(0.1, 1.0 - (progress - 0.8) / 0.2 * 0.9)
    return cfg.lr * warm * decay


@torch.no_grad()
def sample_grid(
    model: Denoiser,
    store_encoder: tuple[TextEncoder, Tokenizer],
    prompts: list[str],
    device: torch.device,
    steps: int = 20,
    guidance: float = 4.0,
    seed: int = 0,
    db: X.ExemplarDB | None = None,
) -> Image.Image:
    """Images for fixed prompts from ``model`` (the EMA), as one grid, at the base resolution;
    with a ``db``, each prompt's exemplar is looked up in it as the engine does."""
    encoder, tokenizer = store_encoder
    tokens = tokenizer([*prompts, *[""] * len(prompts)])
    with torch.autocast(device.type, dtype=torch.bfloat16):
        states, pooled = encoder(tokens.ids.to(device), tokens.mask.to(device))
    n = len(prompts)
    mask = tokens.mask.to(device)
    r = model.cfg.resolution
    exemplar = None
    if db is not None and model.cfg.exemplar_channels:
        thumbs, _ = db.lookup(pooled[:n].float(), [seed] * n)
        exemplar = X.render(thumbs.to(device), r)
    cond = {"text": states[:n], "text_mask": mask[:n], "pooled": pooled[:n], "glyph": None, "exemplar": exemplar}
    uncond = {"text": states[n:], "text_mask": mask[n:], "pooled": pooled[n:], "glyph": None, "exemplar": None}
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn(n, 3, r, r, generator=g).to(device)

    def net(x: torch.Tensor, s: torch.Tensor, **kw: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return model(x, s, **kw).float()

    out = sample_euler(cfg_denoiser(net, cond, uncond, guidance), x, flow_sigmas(steps, device=device))
    imgs = ((out.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    grid = Image.new("RGB", (r * n, r))
    for i, im in enumerate(imgs):
        grid.paste(Image.fromarray(im), (i * r, 0))
    return grid


def make_optimizer(cfg: TrainConfig, model: Denoiser, device: torch.device) -> torch.optim.Optimizer:
    """AdamW on everything, or Muon on the blocks' matrices and AdamW on the rest; each group
    remembers its peak rate (``base_lr``) for the schedule."""
    if cfg.optimizer == "adamw":
        opt: torch.optim.Optimizer = torch.optim.AdamW(
            model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, fused=device.type == "cuda"
        )
    elif cfg.optimizer == "muon":
        matrices, rest = split_params(model)
        groups = [{"params": matrices, "muon": True}, {"params": rest, "muon": False}]
        opt = Muon(groups, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    else:
        raise SystemExit(f"unknown optimizer {cfg.optimizer!r}: adamw or muon")
    for group in opt.param_groups:
        group["base_lr"] = cfg.lr
    return opt


def main(cfg: TrainConfig) -> dict:
    rank, world, device = setup_distributed(cfg)
    is_main = rank == 0
    out = Path(cfg.out)
    ckpt_path = out / "checkpoint.pt"
    state = None
    if cfg.resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        saved = state["config"]
        # keep the architecture, data and optimizer of the run; take budgets and schedule from this call
        kept = {k: saved[k] for k in ("preset", "arch", "optimizer", "subset", "extra") if k in saved}
        cfg = TrainConfig(**{**asdict(cfg), **kept})
    model_cfg = model_config(cfg)
    torch.manual_seed(cfg.seed + rank)
    random.seed(cfg.seed + rank)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed * 1000 + rank)
    # per-step randomness is drawn on the training device: drawing 6 M normals a step on the
    # CPU and copying them over made a GPU run 5× slower
    dgen = torch.Generator(device=device).manual_seed(cfg.seed * 1000 + rank)
    fixed_shapes = cfg.compile or device.type == "cuda"  # one shape per batch: no host sync, no recompiles

    # 1. data: foregrounds and backgrounds (uint8, on the device), glyph canvases, exemplar
    #    thumbnails and candidates, and every caption encoded once
    r = model_cfg.resolution
    train = TrainSet.load(resolve_data(cfg, r, "train"))
    val_path = resolve_data(cfg, r, "val")
    val = TrainSet.load(val_path) if val_path.exists() else None
    if cfg.subset < 1:
        train = subset_of(train, cfg.subset)
        val = subset_of(val, cfg.subset) if val is not None else None
    tokenizer = Tokenizer(Path(cfg.tokenizer) if cfg.tokenizer else None)
    encoder = TextEncoder.load(Path(cfg.text_encoder) if cfg.text_encoder else None)
    flat: list[str] = []
    cap_start, cap_count = [], []
    for caps in train.captions:
        cap_start.append(len(flat))
        cap_count.append(len(caps))
        flat.extend(caps)
    if is_main:
        print(f"{len(train)} training images, {len(flat)} captions, resolution {train.resolution}", file=sys.stderr)
    cache_dir = Path(cfg.data) if device.type == "cpu" and Path(cfg.data).is_dir() and not cfg.text_encoder else None
    cache = cache_dir / f"caption-states-{r}.pt" if cache_dir and cfg.subset >= 1 else None
    store = CaptionStore(flat, encoder, tokenizer, device, progress=is_main, cache=cache)
    cap_start_t = torch.tensor(cap_start, device=device)
    cap_count_t = torch.tensor(cap_count, device=device)
    if train.rgba is not None and train.backgrounds is not None:
        rgba, backgrounds, images = train.rgba.to(device), train.backgrounds.to(device), None
    else:
        rgba, backgrounds, images = None, None, train.images.to(device)
    glyphs = train.glyphs.to(device)
    glyph_of = train.glyph_of.to(device)
    draw_weights = record_weights(train, cfg.tone_weight)
    draw_weights = draw_weights.to(device) if draw_weights is not None else None
    exemplars = None
    if model_cfg.exemplar_channels:
        key_cache = cache_dir / f"exemplar-keys-{r}.pt" if cache_dir and cfg.subset >= 1 else None
        exemplars = Exemplars(train, encoder, tokenizer, device, key_cache)
        if is_main:
            have = int((exemplars.cands[:, 0] >= 0).sum())
            print(f"exemplar candidates for {have} of {len(train)} records", file=sys.stderr)

    def make_batch(b: int) -> tuple[torch.Tensor, dict]:
        """A training batch drawn on the device: x₀ (B, 3, R, R) in [-1, 1] and the network's
        conditioning; every random choice comes from ``dgen``."""

        def rand() -> torch.Tensor:
            return torch.rand(b, generator=dgen, device=device)

        if draw_weights is not None:
            idx = torch.multinomial(draw_weights, b, replacement=True, generator=dgen)
        else:
            idx = torch.randint(len(train), (b,), generator=dgen, device=device)
        if rgba is not None and backgrounds is not None:
            x0 = composite(rgba[idx], backgrounds[idx]).div_(127.5).sub_(1)  # (B, 3, R, R)
        else:
            assert images is not None
            x0 = images[idx].float().div_(127.5).sub_(1)
        gi = glyph_of[idx]
        has_glyph = gi >= 0
        glyph = None
        if model_cfg.glyph_channels:
            glyph = torch.zeros(b, 1, r, r, device=device)
            if len(glyphs):
                glyph = glyphs[gi.clamp(min=0)].float().div_(255) * has_glyph[:, None, None, None]  # (B, 1, R, R)
            glyph = glyph * (rand() >= cfg.glyph_dropout)[:, None, None, None]
        if cfg.flip:  # mirror images that spell nothing
            flip = (rand() < 0.5) & ~has_glyph
            x0 = torch.where(flip[:, None, None, None], x0.flip(-1), x0)
        rows = cap_start_t[idx] + (rand() * cap_count_t[idx]).long()
        rows = torch.where(rand() < cfg.caption_dropout, torch.full_like(rows, store.null), rows)
        text, text_mask, pooled = store.batch(rows, fixed=fixed_shapes)
        exemplar = None
        if exemplars is not None:
            chosen = X.pick(exemplars.cands, idx, dgen, cfg.exemplar_dropout)
            exemplar = X.render(X.gather(exemplars.thumbs, chosen), r, dgen)  # (B, 4, R, R)
        return x0, {"text": text, "text_mask": text_mask, "pooled": pooled, "glyph": glyph, "exemplar": exemplar}

    # 2. model, EMA, optimizer
    model = Denoiser(model_cfg).to(device)
    if cfg.init and state is None:
        fresh = init_from(model, Path(cfg.init))
        if is_main and fresh:
            print(
                f"initialised from {cfg.init}; new and zero: {', '.join(sorted({k.split('.')[0] for k in fresh}))}",
                file=sys.stderr,
            )
    ema = Denoiser(model_cfg).to(device).eval().requires_grad_(False)
    ema.load_state_dict(model.state_dict())
    opt = make_optimizer(cfg, model, device)
    step, images_seen, elapsed_before, history = 0, 0, 0.0, []
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        step, elapsed_before, history = state["step"], state["elapsed"], state["history"]
        images_seen = state.get("images_seen", step * cfg.batch)
        torch.set_rng_state(state["rng"]["torch"])
        gen.set_state(state["rng"]["generator"])
        if "device_generator" in state["rng"]:
            dgen.set_state(state["rng"]["device_generator"])
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
    n_params = sum(p.numel() for p in model.parameters())
    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    flops_image = 3 * flops_per_image(model_cfg)  # forward + backward ≈ 3× forward
    peak = bf16_peak(device) * world
    ema_params: list[torch.Tensor] = list(ema.parameters())
    model_params: list[torch.Tensor] = list(model.parameters())

    def train_step(b: int, lr_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step on a fresh batch of ``b``; returns loss and gradient norm as
        device tensors (reading them would wait for the device)."""
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * lr_scale
        x0, cond = make_batch(b)
        noise = torch.randn(x0.shape, generator=dgen, device=device)
        sigma = sample_sigma(b, dgen, cfg.sigma_mean, cfg.sigma_std, device=device)

        def denoise(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
            with torch.autocast(device.type, dtype=torch.bfloat16):
                return net(x, s, **cond)

        loss = flow_loss(denoise, x0, noise, sigma).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model_params, cfg.grad_clip)
        opt.step()
        with torch.no_grad():
            decay = min(cfg.ema, (1 + step) / (10 + step))
            torch._foreach_lerp_(ema_params, model_params, 1 - decay)
        return loss.detach(), grad_norm.detach()

    # fixed validation batch: same images, exemplars, noise and σ every time, so the numbers compare
    val_batch = None
    if val is not None and len(val):
        vg = torch.Generator().manual_seed(1234)
        vi = torch.randperm(len(val), generator=vg)[: min(256, len(val))]
        vt = tokenizer([val.captions[i][0] for i in vi.tolist()])
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
            vs, vp = encoder.to(device)(vt.ids.to(device), vt.mask.to(device))
        v_glyph = None
        if len(val.glyphs):
            gsel = val.glyph_of[vi]
            v_glyph = (val.glyphs[gsel.clamp(min=0)].float().div(255) * (gsel >= 0)[:, None, None, None]).to(device)
        v_ex = None
        if exemplars is not None:
            v_ex = X.render(exemplars.for_val(val, encoder, tokenizer, device)[vi].to(device), r)
        val_batch = {
            "x0": val.images[vi].float().div(127.5).sub(1).to(device),
            "noise": torch.randn(len(vi), 3, val.resolution, val.resolution, generator=vg).to(device),
            "sigma": torch.linspace(0.05, 0.95, len(vi)).to(device),
            "text": vs,
            "text_mask": vt.mask.to(device),
            "pooled": vp.float(),
            "glyph": v_glyph,
            "exemplar": v_ex,
        }

    def val_loss() -> float | None:
        if val_batch is None:
            return None
        losses = []
        with torch.no_grad():
            for i in range(0, len(val_batch["x0"]), 64):
                part = {k: None if v is None else v[i : i + 64] for k, v in val_batch.items()}
                cond = {k: part[k] for k in ("text", "text_mask", "pooled", "glyph", "exemplar")}

                def den(x: torch.Tensor, s: torch.Tensor, cond: dict = cond) -> torch.Tensor:
                    with torch.autocast(device.type, dtype=torch.bfloat16):
                        return ema(x, s, **cond)

                x0, noise, sigma = (part[k] for k in ("x0", "noise", "sigma"))
                assert x0 is not None and noise is not None and sigma is not None  # always in the batch
                losses.append(flow_loss(den, x0, noise, sigma))
        return float(torch.cat(losses).mean())

    def samples() -> Image.Image:
        db = exemplars.db if exemplars is not None else None
        return sample_grid(ema, (encoder, tokenizer), SAMPLE_PROMPTS, device, db=db)

    def weights_meta() -> dict:
        return {
            "steps": step,
            "preset": cfg.preset,
            "images_seen": images_seen,
            "train_seconds": round(elapsed_before + time.time() - started),
            "cpu_seconds": round(cpu_before + time.process_time() - cpu_started),
            "device": device.type,
        }

    def save() -> None:
        if not is_main:
            return
        out.mkdir(parents=True, exist_ok=True)
        save_atomic(
            {
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "optimizer": opt.state_dict(),
                "step": step,
                "images_seen": images_seen,
                "elapsed": elapsed_before + (time.time() - started),
                "cpu_seconds": cpu_before + time.process_time() - cpu_started,
                "config": asdict(cfg),
                "history": history,
                "loss_ema": loss_ema,
                "rng": {
                    "torch": torch.get_rng_state(),
                    "generator": gen.get_state(),
                    "device_generator": dgen.get_state(),  # draws every batch, noise and σ
                    "python": random.getstate(),
                    "numpy": np.random.get_state(),
                },
            },
            ckpt_path,
        )
        save_weights(out / "ema.safetensors", ema, "denoiser", weights_meta())

    # 3. the loop
    local_batch = cfg.batch // world
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "samples").mkdir(exist_ok=True)
        print(
            f"preset {cfg.preset}: {n_params / 1e6:.1f} M parameters, {model_cfg.tokens} tokens, "
            f"batch {cfg.batch} on {world} × {device.type}",
            file=sys.stderr,
        )
    started = time.time()
    cpu_before = state.get("cpu_seconds", 0.0) if state else 0.0
    cpu_started = time.process_time()
    loss_ema = None if state is None else state.get("loss_ema")
    budget_s = cfg.minutes * 60 if cfg.minutes else math.inf
    model.train()
    if cfg.batch_probe and state is None:  # eager: compiling every candidate shape would cost minutes
        local_batch, probe = probe_batch(
            train_step, [int(b) for b in cfg.batch_probe.split(",")], device, flops_image, peak
        )
        step += probe["steps"]
        images_seen += probe["images"]
        cfg = replace(cfg, batch=local_batch * world)
        history.append({"step": step, "probe": probe["results"], "batch": cfg.batch})
        if is_main:
            print(f"batch probe: {probe['results']} → batch {cfg.batch}", file=sys.stderr, flush=True)
    if cfg.compile:  # one real step compiles it; a compiler failure must not cost the run
        eager = net
        net = torch.compile(net, dynamic=False)  # type: ignore[assignment]
        t = time.time()
        try:
            train_step(local_batch, lr_at(cfg, step, 0.0) / cfg.lr)
            step += 1
            images_seen += local_batch * world
            if is_main:
                print(f"torch.compile ready in {time.time() - t:.0f}s", file=sys.stderr, flush=True)
        except Exception as e:
            net = eager
            if is_main:
                print(f"torch.compile failed ({type(e).__name__}: {str(e)[:300]}); training eagerly", file=sys.stderr)
    t_log, step_log, seen_log = time.time(), step, images_seen
    first_step = step
    while step < cfg.steps and (time.time() - started) < budget_s:
        progress = max(step / cfg.steps, (time.time() - started) / budget_s if budget_s < math.inf else 0.0)
        if cfg.minutes and step - first_step < 20:
            progress = step / cfg.steps  # the clock is not yet a good guide during compile/warm-up
        lr = lr_at(cfg, step, progress)
        loss, grad_norm = train_step(local_batch, lr / cfg.lr)
        step += 1
        images_seen += local_batch * world

        if step % cfg.log_every == 0 or step == cfg.steps:
            loss_v = loss.item()
            loss_ema = loss_v if loss_ema is None else 0.9 * loss_ema + 0.1 * loss_v
            if is_main:
                now = time.time()
                images_s = (images_seen - seen_log) / max(now - t_log, 1e-9)
                steps_s = (step - step_log) / max(now - t_log, 1e-9)
                t_log, step_log, seen_log = now, step, images_seen
                rec = {
                    "step": step,
                    "loss": round(loss_v, 5),
                    "loss_ema": round(loss_ema, 5),
                    "lr": lr,
                    "grad_norm": round(grad_norm.item(), 4),
                    "images_seen": images_seen,
                    "steps_per_s": round(steps_s, 3),
                    "images_per_s": round(images_s, 1),
                    "mfu": round(images_s * flops_image / peak, 4),
                    "elapsed": round(elapsed_before + now - started, 1),
                    "cpu_seconds": round(cpu_before + time.process_time() - cpu_started, 1),
                }
                history.append(rec)
                remaining = (cfg.steps - step) / max(steps_s, 1e-9)
                if budget_s < math.inf:
                    remaining = min(remaining, budget_s - (now - started))
                print(
                    f"step {step} loss {loss_ema:.4f} lr {lr:.2e} {rec['images_per_s']} img/s "
                    f"MFU {rec['mfu']:.1%} ETA {remaining / 60:.1f} min",
                    file=sys.stderr,
                    flush=True,
                )
        if step % cfg.save_every == 0:
            vl = val_loss()
            if is_main:
                history.append({"step": step, "images_seen": images_seen, "val_loss": vl})
                if vl is not None:
                    print(f"step {step} validation loss {vl:.5f}", file=sys.stderr, flush=True)
                save()
        if cfg.keep_every and step % cfg.keep_every == 0 and is_main:
            save_weights(out / "snapshots" / f"ema-{step:07d}.safetensors", ema, "denoiser", weights_meta())
        if step % cfg.sample_every == 0 and is_main:
            samples().save(out / "samples" / f"step-{step:07d}.png")

    vl = val_loss()
    if is_main:
        history.append({"step": step, "images_seen": images_seen, "val_loss": vl})
        save()
        samples().save(out / "samples" / f"step-{step:07d}.png")
        (out / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
    if world > 1:
        dist.destroy_process_group()
    return {"step": step, "images_seen": images_seen, "val_loss": vl, "history": history}


def probe_batch(
    train_step, batches: list[int], device: torch.device, flops_image: float, peak: float, steps: int = 8
) -> tuple[int, dict]:
    """Try each batch size for a few real training steps (the first ones compile) and keep the
    one with the most images per second; sizes that run out of memory are skipped. The steps
    count as training: nothing is thrown away but the time."""
    results: dict[int, dict[str, float] | str] = {}
    done, seen = 0, 0

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for b in batches:
        try:
            for _ in range(3):  # compile and warm up at this shape
                train_step(b, 0.1)
            sync()
            t = time.perf_counter()
            for _ in range(steps):
                train_step(b, 0.1)
            sync()
            dt = time.perf_counter() - t
        except torch.OutOfMemoryError:
            results[b] = "out of memory"
            if device.type == "cuda":
                torch.cuda.empty_cache()
            continue
        done += 3 + steps
        seen += (3 + steps) * b
        ips = steps * b / dt
        results[b] = {"images_per_s": round(ips, 1), "mfu": round(ips * flops_image / peak, 4)}
    ok = {b: v["images_per_s"] for b, v in results.items() if not isinstance(v, str)}
    if not ok:
        raise SystemExit(f"no batch size in {batches} fits on {device}")
    return max(ok, key=lambda b: ok[b]), {"steps": done, "images": seen, "results": results}


def cli_args(argv: list[str] | None = None) -> TrainConfig:
    """Parse ``--field value`` pairs for TrainConfig (used by torchrun; ``limner train`` uses typer)."""
    import argparse

    p = argparse.ArgumentParser(description=__doc__)
    for f in TrainConfig.__dataclass_fields__.values():
        if f.name == "extra":
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool",):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        elif f.name == "betas":
            p.add_argument(flag, type=float, nargs=2, default=f.default)
        else:
            kind = {"int": int, "float": float, "str": str}.get(str(f.type).split(" ")[0], str)
            if "None" in str(f.type):
                kind = float if "float" in str(f.type) else str
            p.add_argument(flag, type=kind, default=f.default)
    ns = p.parse_args(argv)
    values: dict[str, Any] = {k: (tuple(v) if k == "betas" else v) for k, v in vars(ns).items()}
    return TrainConfig(**values)


if __name__ == "__main__":
    main(cli_args())
