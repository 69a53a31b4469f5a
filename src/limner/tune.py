"""Preference tuning of the built-in denoiser from arena votes: Diffusion-DPO, and a baseline.

    limner arena export --out prefs/ --format preference-pairs
    limner tune --pairs prefs/ --init weights/limner-1 --out runs/dpo
    limner export-weights --denoiser runs/dpo/ema.safetensors --upsampler weights/limner-1/upsampler.safetensors --out weights/limner-1-dpo

**Diffusion-DPO** (Wallace et al. 2023) writes the DPO objective on the denoising loss. For a
prompt c with a preferred image x_w and a rejected one x_l, both noised with the same noise ε and
level σ, and ℓ(θ, x) the model's flow loss on x (``limner.model.flow.flow_loss``):

    margin = [ℓ(θ, x_w) − ℓ(ref, x_w)] − [ℓ(θ, x_l) − ℓ(ref, x_l)]
    L = −log σ(−β/2 · margin)

The reference is a frozen copy of the starting model: the policy is rewarded for denoising the
winner better *than the reference does* and the loser worse, and β sets how far it may drift
(the paper's 5000 is for SDXL's latent loss; Limner's pixel-space velocity loss is on another
scale, docs/preference-tuning.md has the sweep). While the policy equals the reference the loss
is log 2 and its gradient is β/4 · ∇[ℓ(θ, x_w) − ℓ(θ, x_l)]: nothing but the preference.

**Winners only** (``--method sft``), the baseline: the ordinary flow loss on the preferred images.

The pairs are what ``limner arena export`` writes: decisive votes only (ties and "both bad"
prefer neither image) of voters the arena has not flagged. Pairs are split by prompt: a share of
the prompts is held out and the validation figure is the *implicit-reward accuracy*, how often
the EMA model prefers the held-out winner (margin < 0) at fixed noise. Same conventions as
``limner train``: bf16 autocast, EMA, resumable from ``OUT/checkpoint.pt``, inference weights in
``OUT/ema.safetensors``. Prompts are tuned on the text path without their glyph canvas (an
exported pair does not carry the seed that laid out its letters).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from limner.errors import InvalidRequest
from limner.model.checkpoint import load_denoiser, save_atomic, save_weights
from limner.model.denoiser import Denoiser
from limner.model.flow import Denoise, flow_loss, sample_sigma
from limner.model.text import TextEncoder, Tokenizer

METHODS = ("dpo", "sft")
MAX_IMAGE_BYTES = 32 << 20  # an exported image is a 256² PNG: anything near this is not one
MAX_IMAGE_SIDE = 4096


@dataclass
class TuneConfig:
    pairs: str  # a folder written by `limner arena export --format preference-pairs`
    init: str  # the model to tune: a weights folder or a denoiser file
    out: str = "runs/dpo"
    method: str = "dpo"  # "dpo" or "sft" (the preferred images only)
    beta: float = 2000.0
    steps: int = 300
    minutes: float | None = None
    batch: int = 16  # pairs per step
    lr: float = 2e-5
    warmup: int = 20
    ema: float = 0.99
    grad_clip: float = 1.0
    val_share: float = 0.15  # prompts held out for validation (hash-chosen)
    save_every: int = 50
    log_every: int = 10
    seed: int = 0
    resume: bool = False


@dataclass
class Pairs:
    prompts: list[str]
    winners: torch.Tensor  # (N, 3, R, R) in [-1, 1]
    losers: torch.Tensor

    def __len__(self) -> int:
        return len(self.prompts)

    def take(self, idx: list[int]) -> Pairs:
        i = torch.tensor(idx, dtype=torch.long)
        return Pairs([self.prompts[k] for k in idx], self.winners[i], self.losers[i])


def read_image(path: Path, resolution: int) -> torch.Tensor:
    """One exported image as (3, R, R) in [-1, 1]; bounded before it is decoded."""
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise InvalidRequest(f"{path.name} is {size} bytes; an exported image is far smaller", param="pairs")
    try:
        with Image.open(path) as im:
            if max(im.size) > MAX_IMAGE_SIDE:
                raise InvalidRequest(f"{path.name} is {im.size[0]}×{im.size[1]} pixels", param="pairs")
            rgb = im.convert("RGB").resize((resolution, resolution), Image.Resampling.BOX)
    except (OSError, Image.DecompressionBombError) as e:
        raise InvalidRequest(f"{path.name} is not a readable image: {e}", param="pairs") from e
    return torch.from_numpy(np.asarray(rgb, dtype=np.float32)).permute(2, 0, 1).div(127.5).sub(1)


def load_pairs(folder: Path, resolution: int) -> Pairs:
    """The pairs of an arena export at the model's resolution; each image decoded once. Image
    paths must stay inside ``folder``."""
    folder = Path(folder)
    listing = folder / "pairs.jsonl"
    if not listing.is_file():
        raise InvalidRequest(
            f"{listing} not found: make it with `limner arena export --out {folder} --format preference-pairs`",
            param="pairs",
        )
    root = folder.resolve()
    cache: dict[str, torch.Tensor] = {}

    def image(rel: object, line: int) -> torch.Tensor:
        if not isinstance(rel, str):
            raise InvalidRequest(f"pairs.jsonl line {line}: an image path must be a string", param="pairs")
        path = (folder / rel).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise InvalidRequest(f"pairs.jsonl line {line}: {rel!r} is not a file in the export", param="pairs")
        if rel not in cache:
            cache[rel] = read_image(path, resolution)
        return cache[rel]

    prompts, winners, losers = [], [], []
    for n, text in enumerate(listing.read_text().splitlines(), 1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
            prompt = row["prompt"]
            if not isinstance(prompt, str):
                raise TypeError("prompt is not a string")
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidRequest(f"pairs.jsonl line {n}: not a preference pair ({e})", param="pairs") from e
        prompts.append(prompt)
        winners.append(image(row.get("winner"), n))
        losers.append(image(row.get("loser"), n))
    if not prompts:
        raise InvalidRequest(f"{listing} holds no pairs: the arena has no decisive votes yet", param="pairs")
    return Pairs(prompts, torch.stack(winners), torch.stack(losers))


def split_by_prompt(pairs: Pairs, val_share: float) -> tuple[Pairs, Pairs | None]:
    """Training and held-out pairs, every pair of one prompt on the same side (hash of the prompt)."""

    def held(prompt: str) -> bool:
        return int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16) / 16**8 < val_share

    val = [i for i, p in enumerate(pairs.prompts) if held(p)]
    train = [i for i, p in enumerate(pairs.prompts) if not held(p)]
    if not train:
        return pairs, None
    return pairs.take(train), (pairs.take(val) if val else None)


def dpo_loss(
    policy: Denoise,
    reference: Denoise,
    winners: torch.Tensor,
    losers: torch.Tensor,
    noise: torch.Tensor,
    sigma: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Diffusion-DPO: per-pair loss −log σ(−β/2 · margin) and the margin (negative: the policy
    prefers the winner more than the reference does). ``policy`` and ``reference`` see the
    winners and losers stacked, (2B, …), both noised with the same ``noise`` and ``sigma``."""
    x = torch.cat([winners, losers])
    eps, s = torch.cat([noise, noise]), torch.cat([sigma, sigma])
    own_w, own_l = flow_loss(policy, x, eps, s).chunk(2)
    with torch.no_grad():
        ref_w, ref_l = flow_loss(reference, x, eps, s).chunk(2)
    margin = (own_w - ref_w) - (own_l - ref_l)
    return -F.logsigmoid(-0.5 * beta * margin), margin.detach()


def main(cfg: TuneConfig, device: torch.device | None = None) -> dict:
    if cfg.method not in METHODS:
        raise InvalidRequest(f"method must be one of {', '.join(METHODS)}", param="method")
    device = device or torch.device("cpu")
    out = Path(cfg.out)
    ckpt_path = out / "checkpoint.pt"
    state = torch.load(ckpt_path, map_location="cpu", weights_only=False) if cfg.resume and ckpt_path.exists() else None
    init = Path(cfg.init)
    model, meta = load_denoiser(init / "denoiser.safetensors" if init.is_dir() else init)
    model = model.to(device).requires_grad_(True)
    reference = Denoiser(model.cfg).to(device).eval().requires_grad_(False)
    reference.load_state_dict(model.state_dict())
    ema = Denoiser(model.cfg).to(device).eval().requires_grad_(False)
    ema.load_state_dict(model.state_dict())

    pairs, val = split_by_prompt(load_pairs(Path(cfg.pairs), model.cfg.resolution), cfg.val_share)
    tokenizer, encoder = Tokenizer(), TextEncoder.load()
    prompts = sorted(set(pairs.prompts) | set(val.prompts if val else []))
    tokens = tokenizer(prompts)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
        states, pooled = encoder.to(device)(tokens.ids.to(device), tokens.mask.to(device))
    row_of = {p: i for i, p in enumerate(prompts)}
    text_mask = tokens.mask.to(device)

    def cond(batch: list[str], repeat: int) -> dict:
        rows = torch.tensor([row_of[p] for p in batch] * repeat, device=device)
        return {"text": states[rows], "text_mask": text_mask[rows], "pooled": pooled[rows].float()}

    def denoiser(net: torch.nn.Module, c: dict) -> Denoise:
        def run(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
            with torch.autocast(device.type, dtype=torch.bfloat16):
                return net(x, s, **c)

        return run

    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
    step, history = 0, []
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        step, history = state["step"], state["history"]
        gen.set_state(state["generator"])

    def loss_of(net: torch.nn.Module, part: Pairs, noise: torch.Tensor, sigma: torch.Tensor) -> tuple:
        """The method's per-pair loss and the DPO margin (logged for both methods)."""
        w, l_, c = part.winners.to(device), part.losers.to(device), cond(part.prompts, 2)
        if cfg.method == "sft":
            loss = flow_loss(denoiser(net, cond(part.prompts, 1)), w, noise, sigma)
            with torch.no_grad():
                margin = dpo_loss(denoiser(net, c), denoiser(reference, c), w, l_, noise, sigma, cfg.beta)[1]
            return loss, margin
        return dpo_loss(denoiser(net, c), denoiser(reference, c), w, l_, noise, sigma, cfg.beta)

    vgen = torch.Generator().manual_seed(1234)  # fixed validation noise: the numbers compare
    v_noise = torch.randn(val.winners.shape, generator=vgen).to(device) if val else None
    v_sigma = torch.linspace(0.1, 0.9, len(val)).to(device) if val else None

    def validate() -> dict:
        if val is None:
            return {}
        with torch.no_grad():
            margin = loss_of(ema, val, v_noise, v_sigma)[1]  # type: ignore[arg-type]
        return {"val_accuracy": round(float((margin < 0).float().mean()), 4), "val_margin": float(margin.mean())}

    def save() -> None:
        out.mkdir(parents=True, exist_ok=True)
        save_atomic(
            {
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "optimizer": opt.state_dict(),
                "step": step,
                "history": history,
                "generator": gen.get_state(),
                "config": asdict(cfg),
            },
            ckpt_path,
        )
        tuned = {"method": cfg.method, "beta": cfg.beta, "pairs": len(pairs), "parent": str(cfg.init)}
        keep = {k: v for k, v in meta.items() if k != "config"}  # the parent's sampling defaults too
        save_weights(out / "ema.safetensors", ema, "denoiser", {**keep, "tuned": tuned, "tune_steps": step})

    if state is None:
        history.append({"step": 0, **validate()})
    started, budget = time.time(), cfg.minutes * 60 if cfg.minutes else math.inf
    print(
        f"{cfg.method}: {len(pairs)} pairs to tune on, {len(val) if val else 0} held out; batch {cfg.batch}",
        file=sys.stderr,
    )
    model.train()
    t_log, step_log = time.time(), step
    while step < cfg.steps and time.time() - started < budget:
        lr = cfg.lr * min(1.0, (step + 1) / max(cfg.warmup, 1))
        for group in opt.param_groups:
            group["lr"] = lr
        idx = torch.randint(len(pairs), (min(cfg.batch, len(pairs)),), generator=gen).tolist()
        part = pairs.take(idx)
        noise = torch.randn(part.winners.shape, generator=gen).to(device)
        sigma = sample_sigma(len(idx), gen).to(device)
        loss, margin = loss_of(model, part, noise, sigma)
        opt.zero_grad(set_to_none=True)
        loss.mean().backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        with torch.no_grad():
            decay = min(cfg.ema, (1 + step) / (10 + step))
            torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - decay)
        step += 1
        if step % cfg.log_every == 0 or step == cfg.steps:
            now = time.time()
            rate = (step - step_log) / max(now - t_log, 1e-9)
            t_log, step_log = now, step
            rec = {
                "step": step,
                "loss": round(float(loss.detach().mean()), 5),
                "accuracy": round(float((margin < 0).float().mean()), 3),
                "grad_norm": round(float(grad_norm), 4),
                "lr": lr,
            }
            history.append(rec)
            eta = min((cfg.steps - step) / max(rate, 1e-9), budget - (now - started))
            print(
                f"step {step}/{cfg.steps} loss {rec['loss']:.4f} pair accuracy {rec['accuracy']:.2f} "
                f"{rate:.2f} steps/s ETA {eta / 60:.1f} min",
                file=sys.stderr,
                flush=True,
            )
        if step % cfg.save_every == 0:
            history.append({"step": step, **validate()})
            save()
    history.append({"step": step, **validate()})
    save()
    (out / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
    return {"step": step, "history": history, **history[-1]}
