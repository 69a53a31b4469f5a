"""The prompt-fidelity instruments: small CLIP-style image encoders trained (here, on the corpus's
real training images only — never on generated ones) to match frozen MiniLM caption embeddings.

Model hubs are out of reach, so no pretrained CLIP or Inception can score our images; these
evaluators are Limner's own. Two are shipped:

- ``weights/evaluator.safetensors`` (colour): prompt fidelity; its pooled convolutional features
  also serve the Fréchet distance.
- ``weights/shape-evaluator.safetensors`` (``colour=False``): shape fidelity. It sees only a grey
  image, and was trained with the grey made from randomly weighted colour channels, so that
  neither hue nor the brightness a hue usually has can tell it what an image shows — only the
  drawing can (see docs/evaluation.md for why this design and not hard negatives alone).
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

RESOLUTION = 64


@dataclass(frozen=True)
class EvaluatorConfig:
    channels: tuple[int, ...] = (48, 96, 192, 320)
    embed: int = 384  # MiniLM's width
    resolution: int = RESOLUTION
    colour: bool = True  # False: the shape instrument, which sees one grey channel


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1),
        nn.GroupNorm(8, cout),
        nn.SiLU(),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.GroupNorm(8, cout),
        nn.SiLU(),
    )


class Evaluator(nn.Module):
    def __init__(self, cfg: EvaluatorConfig = EvaluatorConfig()):
        super().__init__()
        self.cfg = cfg
        chans = [3 if cfg.colour else 1, *cfg.channels]
        self.convs = nn.Sequential(*(_block(a, b) for a, b in itertools.pairwise(chans)))
        self.image_proj = nn.Linear(cfg.channels[-1], cfg.embed)
        self.text_proj = nn.Sequential(nn.Linear(cfg.embed, cfg.embed), nn.SiLU(), nn.Linear(cfg.embed, cfg.embed))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, 64, 64) in [-1, 1] → pooled features (B, C) (used for the Fréchet distance).
        A colour-blind evaluator first takes the channels' mean; it also accepts (B, 1, 64, 64)
        grey images, which is how training hands it randomly weighted greys."""
        if not self.cfg.colour and images.shape[1] == 3:
            images = images.mean(1, keepdim=True)  # (B, 1, 64, 64)
        return self.convs(images).mean((2, 3))

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_proj(self.features(images)), dim=-1)

    def embed_texts(self, pooled: torch.Tensor) -> torch.Tensor:
        """MiniLM sentence embeddings (B, 384) → the shared space."""
        return F.normalize(pooled + self.text_proj(pooled), dim=-1)

    def save(self, path: Path, meta: dict) -> None:
        save_file(
            {k: v.detach().half().contiguous() for k, v in self.state_dict().items()},
            str(path),
            metadata={
                "format": "limner-evaluator",
                "config": json.dumps(asdict(self.cfg)),
                **{k: json.dumps(v) for k, v in meta.items()},
            },
        )

    @classmethod
    def load(cls, path: Path) -> tuple[Evaluator, dict]:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
            sd = {k: f.get_tensor(k).float() for k in f.keys()}  # noqa: SIM118
        cfg = json.loads(meta["config"])
        model = cls(EvaluatorConfig(**{**cfg, "channels": tuple(cfg["channels"])}))
        model.load_state_dict(sd)
        extra = {k: json.loads(v) for k, v in meta.items() if k not in ("format", "config")}
        return model.eval().requires_grad_(False), extra


def to_eval_tensor(images: list | np.ndarray) -> torch.Tensor:
    """PIL images or uint8 arrays (N, H, W, 3) → (N, 3, 64, 64) in [-1, 1] (box-downsampled)."""
    from PIL import Image

    arrs = []
    for im in images:
        im = im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im))
        im = im.convert("RGB")
        if im.size != (RESOLUTION, RESOLUTION):
            im = im.resize((RESOLUTION, RESOLUTION), Image.Resampling.BOX)
        arrs.append(np.asarray(im))
    x = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Flips, small shifts, blur and noise: generated images must not look foreign to the instrument."""
    b = x.shape[0]
    flip = torch.rand(b, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    dx, dy = (int(v) for v in torch.randint(-4, 5, (2,), generator=gen))
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    if torch.rand(1, generator=gen).item() < 0.5:
        k = torch.tensor([1.0, 2.0, 1.0])
        w = ((k[:, None] * k[None]) / 16).expand(3, 1, 3, 3)
        x = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), w, groups=3)
    return x + torch.randn(x.shape, generator=gen) * 0.03


def grey_copy(evaluator: Evaluator) -> Evaluator:
    """A colour evaluator as a grey one, its first convolution summed over the colour channels: on
    a grey image (R = G = B) both give the same embedding."""
    grey = Evaluator(replace(evaluator.cfg, colour=False))
    state = evaluator.state_dict()
    state["convs.0.0.weight"] = state["convs.0.0.weight"].sum(1, keepdim=True)  # (C, 3, 3, 3) → (C, 1, 3, 3)
    grey.load_state_dict(state)
    return grey


def random_grey(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] → (B, 1, H, W): each image's grey made with its own random channel
    weights (uniform on the simplex, mean ⅓ each: the fixed grey the instrument sees at scoring
    time), then a random contrast and brightness. A red region's grey ranges from near black to
    light grey across draws, so how light a region is says little about its hue."""
    b = x.shape[0]
    e = -torch.log(torch.rand(b, 3, generator=gen).clamp_min(1e-6))  # Exp(1): normalised, Dirichlet(1, 1, 1)
    w = (e / e.sum(1, keepdim=True))[:, :, None, None]  # (B, 3, 1, 1)
    grey = ((x + 1) / 2 * w).sum(1, keepdim=True)  # (B, 1, H, W) in [0, 1]
    contrast = 0.7 + 0.6 * torch.rand(b, 1, 1, 1, generator=gen)
    shift = 0.2 * (torch.rand(b, 1, 1, 1, generator=gen) - 0.5)
    grey = (grey - 0.5) * contrast + 0.5 + shift
    return grey.clamp(0, 1) * 2 - 1


def pooled_captions(texts: list[str], cache: Path | None = None) -> torch.Tensor:
    """MiniLM sentence embeddings of ``texts`` (N, 384), cached while the texts stay the same."""
    import hashlib

    from limner.model.text import TextEncoder, Tokenizer

    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    if cache is not None and cache.exists():
        saved = torch.load(cache)
        if saved["digest"] == digest:
            return saved["pooled"]
    tok, enc = Tokenizer(), TextEncoder.load()
    pooled = torch.empty(len(texts), 384)
    started = time.time()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for i in range(0, len(texts), 1024):
            t = tok(texts[i : i + 1024])
            pooled[i : i + 1024] = enc(t.ids, t.mask)[1].float()
            if len(texts) > 1024 and (i // 1024) % 10 == 0:  # only long encodings report progress
                print(
                    f"  encoded {i + len(t.ids)}/{len(texts)} captions ({time.time() - started:.0f}s)", file=sys.stderr
                )
    if cache is not None:
        torch.save({"digest": digest, "pooled": pooled}, cache)
    return pooled


def held_out_top1(model: Evaluator, images: torch.Tensor, pooled: torch.Tensor, k: int = 32) -> float:
    """Top-1 retrieval of each held-out image's own caption among k (the eval's fidelity score)."""
    from limner.eval.metrics import retrieval_top1

    model.eval()
    with torch.no_grad():
        img = torch.cat(
            [model.embed_images(images[i : i + 256].float() / 127.5 - 1) for i in range(0, len(images), 256)]
        )
        txt = model.embed_texts(pooled)
    model.train()
    return retrieval_top1(img.numpy(), txt.numpy(), k=k)


def train_evaluator(
    trainset_path: Path,
    out: Path,
    steps: int = 3000,
    batch: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    colour: bool = True,
    val_every: int = 500,
    init: Path | None = None,
) -> dict:
    """Train on a packed training set (real images only); write the weights; return the history.
    With ``colour=False`` the shape instrument: it sees greys made with random channel weights.
    ``init``: start from another evaluator's weights (for the shape instrument, the colour one's,
    its first convolution summed over the colour channels: the same network on a grey image).
    When the packed validation split lies beside the training file (``…-val.npz``), its top-1
    retrieval of 32 is measured every ``val_every`` steps and stored with the weights."""
    from limner.data.trainset import TrainSet

    torch.manual_seed(seed)
    data = TrainSet.load(trainset_path)
    if data.resolution != RESOLUTION:
        raise ValueError(f"the evaluator trains at {RESOLUTION}px; got a {data.resolution}px trainset")
    flat, owner = [], []
    for i, caps in enumerate(data.captions):
        for c in caps:
            flat.append(c)
            owner.append(i)
    pooled = pooled_captions(flat, Path(trainset_path).with_name("caption-pooled.pt"))
    val_path = Path(str(trainset_path).replace("-train.npz", "-val.npz"))
    val = TrainSet.load(val_path) if val_path != Path(trainset_path) and val_path.exists() else None
    val_pooled = pooled_captions([c[0] for c in val.captions]) if val is not None else None
    owner_t = torch.tensor(owner)
    first_caption = torch.zeros(len(data), dtype=torch.long)
    counts = torch.bincount(owner_t, minlength=len(data))
    first_caption[1:] = torch.cumsum(counts, 0)[:-1]
    model = Evaluator(EvaluatorConfig(colour=colour))
    if init is not None:
        start, _ = Evaluator.load(init)
        if start.cfg.colour != colour:
            if colour:
                raise ValueError(f"{init} is a grey evaluator: a colour one cannot start from it")
            start = grey_copy(start)
        model.load_state_dict(start.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    gen = torch.Generator().manual_seed(seed)
    history: list[dict] = []
    started = time.time()
    for step in range(1, steps + 1):
        idx = torch.randperm(len(data), generator=gen)[:batch]
        x = augment(data.images[idx].float() / 127.5 - 1, gen)
        if not colour:
            x = random_grey(x, gen)  # (B, 1, 64, 64)
        pick = first_caption[idx] + (torch.rand(batch, generator=gen) * counts[idx]).long()
        lr_now = lr * min(1.0, step / 200) * 0.5 * (1 + math.cos(math.pi * step / steps))
        for g in opt.param_groups:
            g["lr"] = lr_now
        with torch.autocast("cpu", dtype=torch.bfloat16):
            img = model.embed_images(x).float()
            txt = model.embed_texts(pooled[pick]).float()
        logits = model.logit_scale.exp().clamp(max=100) * img @ txt.T
        # plain CLIP: every other pair of the batch is a negative, caption twins included (two images
        # with the same caption text are rare in a batch of 256 from 32 k, and the weights shipped
        # and measured in docs/evaluation.md were trained so)
        labels = torch.arange(batch)
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps:
            row = {"step": step, "loss": round(loss.item(), 4), "seconds": round(time.time() - started)}
            if val is not None and val_pooled is not None and (step % val_every == 0 or step == steps):
                row["val_top1"] = round(held_out_top1(model, val.images, val_pooled), 4)
            history.append(row)
            print(
                f"evaluator step {step}/{steps} loss {loss.item():.3f}"
                + (f" held-out top-1 {row['val_top1']:.3f}" if "val_top1" in row else "")
                + f" ({time.time() - started:.0f}s)",
                file=sys.stderr,
                flush=True,
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(
        out,
        {
            "steps": steps,
            "batch": batch,
            "trained_on": str(trainset_path),
            "images": len(data),
            "history": history,
            "seconds": round(time.time() - started),
            "init": str(init) if init else None,
        },
    )
    return {"history": history}
