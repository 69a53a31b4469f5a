"""Exemplars at sampling time: the shipped database of 16×16 foreground thumbnails keyed by
caption embeddings (``ExemplarDB``), the atlas it is stored in, and ``render``, which scales a
thumbnail up to the denoiser's resolution (jittered as in training when given a generator).
Choosing exemplars for training records lives in ``limner.data.exemplars``."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

THUMB = 16  # thumbnail side: a silhouette, not a drawing
CHANNELS = 4  # premultiplied RGB + alpha
IMAGE_SUFFIXES = (".png", ".webp", ".jpg", ".jpeg")


def thumbnails(rgba: torch.Tensor) -> torch.Tensor:
    """(N, 4, R, R) uint8 straight RGBA → (N, 4, 16, 16) uint8 premultiplied, box-averaged."""
    out = []
    for i in range(0, len(rgba), 4096):
        x = rgba[i : i + 4096].float()
        x = torch.cat([x[:, :3] * x[:, 3:] / 255, x[:, 3:]], dim=1)  # premultiply
        out.append(F.adaptive_avg_pool2d(x, THUMB).round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out) if out else torch.zeros(0, CHANNELS, THUMB, THUMB, dtype=torch.uint8)


def render(
    thumbs: torch.Tensor,
    size: int,
    generator: torch.Generator | None = None,
    shift: float = 3 / 64,
    scale: tuple[float, float] = (0.9, 1.1),
    grey: float = 0.5,
) -> torch.Tensor:
    """Thumbnails (B, 4, 16, 16) uint8 → exemplars (B, 4, size, size) in [0, 1], bilinear. With a
    ``generator`` each is jittered as in training: shifted by up to ``shift`` of the side, scaled,
    mirrored half the time and turned grey with probability ``grey``; without one, as is."""
    b, dev = thumbs.shape[0], thumbs.device
    x = thumbs.float() / 255
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    if generator is not None:

        def u(lo: float, hi: float) -> torch.Tensor:
            return torch.rand(b, generator=generator, device=dev) * (hi - lo) + lo

        s = 1 / u(*scale)  # the grid samples the source, so a larger picture is a smaller step
        flip = torch.where(torch.rand(b, generator=generator, device=dev) < 0.5, -1.0, 1.0)
        theta[:, 0, 0], theta[:, 1, 1] = s * flip, s
        theta[:, :, 2] = torch.stack([u(-shift, shift), u(-shift, shift)], 1) * 2  # [-1, 1] grid units
        luma = (x[:, :3] * torch.tensor([0.299, 0.587, 0.114], device=dev)[None, :, None, None]).sum(1, keepdim=True)
        g = (torch.rand(b, generator=generator, device=dev) < grey)[:, None, None, None]
        x = torch.cat([torch.where(g, luma.expand(-1, 3, -1, -1), x[:, :3]), x[:, 3:]], 1)
    grid = F.affine_grid(theta, [b, CHANNELS, size, size], align_corners=False)  # (B, S, S, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)  # (B, 4, S, S)


def to_atlas(thumbs: np.ndarray, quality: int) -> bytes:
    """(M, 4, 16, 16) premultiplied → one lossy WebP of straight RGBA tiles, 128 per row."""
    m = len(thumbs)
    cols = 128
    rows = max(1, -(-m // cols))
    sheet = np.zeros((rows * THUMB, cols * THUMB, 4), dtype=np.uint8)
    x = thumbs.astype(np.float32)
    a = x[:, 3:]
    rgb = np.where(a > 0, x[:, :3] * 255 / np.maximum(a, 1), 0)  # un-premultiply for storage
    tiles = np.concatenate([rgb, a], 1).round().clip(0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        sheet[r * THUMB : (r + 1) * THUMB, c * THUMB : (c + 1) * THUMB] = t
    buf = io.BytesIO()
    Image.fromarray(sheet, "RGBA").save(buf, format="WEBP", quality=quality, method=6, exact=True)
    return buf.getvalue()


def from_atlas(data: bytes, m: int) -> np.ndarray:
    sheet = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"), dtype=np.float32)
    cols = sheet.shape[1] // THUMB
    tiles = np.stack(
        [
            sheet[(i // cols) * THUMB : (i // cols + 1) * THUMB, (i % cols) * THUMB : (i % cols + 1) * THUMB]
            for i in range(m)
        ]
    ).transpose(0, 3, 1, 2)  # (M, 4, 16, 16)
    a = tiles[:, 3:]
    return np.concatenate([tiles[:, :3] * a / 255, a], 1).round().clip(0, 255).astype(np.uint8)


@dataclass
class ExemplarDB:
    """Thumbnails and unit key embeddings; ``lookup`` finds a prompt's exemplar. Keys may live
    in a smaller space (``proj``: the principal directions of the keys, ``mean`` their centre),
    which shrinks the shipped file; sentence embeddings are projected the same way."""

    thumbs: torch.Tensor  # (M, 4, 16, 16) uint8 premultiplied
    keys: torch.Tensor  # (M, D) float32, unit length
    labels: list[str]  # the key texts
    sources: list[str]  # where each thumbnail comes from (licences), "user" for added ones
    threshold: float = 0.75
    proj: torch.Tensor | None = None  # (384, D)
    mean: torch.Tensor | None = None  # (384,)

    def __len__(self) -> int:
        return len(self.labels)

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        """Unit sentence embeddings (B, 384) → unit keys (B, D) comparable with ``keys``."""
        x = pooled.float().cpu()
        if self.proj is None or self.mean is None:
            return x
        return F.normalize((x - self.mean) @ self.proj, dim=1)

    def lookup(self, pooled: torch.Tensor, seeds: list[int], margin: float = 0.03) -> tuple[torch.Tensor, list[int]]:
        """Thumbnails (B, 4, 16, 16) for unit prompt embeddings ``pooled`` (B, 384), and the row
        of each in the database. Among entries within ``margin`` of the best match the seed picks
        one (other seeds, other renditions); where even the best is below ``threshold`` the
        thumbnail is blank and the row −1."""
        blank = torch.zeros(CHANNELS, THUMB, THUMB, dtype=torch.uint8)
        if len(self) == 0:
            return blank.expand(len(seeds), -1, -1, -1).clone(), [-1] * len(seeds)
        sims = self.project(pooled) @ self.keys.T  # (B, M)
        rows = []
        for row, seed in zip(sims, seeds, strict=True):
            top = float(row.max())
            if top < self.threshold:
                rows.append(-1)
                continue
            near = torch.nonzero(row >= top - margin).flatten()
            near = near[row[near].argsort(descending=True, stable=True)][:8]
            rows.append(int(near[seed % len(near)]))
        thumbs = torch.stack([self.thumbs[i] if i >= 0 else blank for i in rows])
        return thumbs, rows

    def save(self, path: Path, quality: int = 90) -> None:
        """One ``.npz``: the thumbnails as a WebP atlas, keys as int8 with a scale per row."""
        k = self.keys.float()
        scale = k.abs().amax(1, keepdim=True).clamp(min=1e-8) / 127
        space: dict[str, torch.Tensor] = (
            {} if self.proj is None or self.mean is None else {"proj": self.proj.half(), "mean": self.mean.half()}
        )
        np.savez(
            path,
            atlas=np.frombuffer(to_atlas(self.thumbs.numpy(), quality), dtype=np.uint8),
            keys=(k / scale).round().to(torch.int8).numpy(),
            scale=scale.half().numpy(),
            **{k: v.numpy() for k, v in space.items()},  # type: ignore[arg-type]  # numpy's stub reads **arrays as savez's allow_pickle
            meta=np.frombuffer(
                json.dumps({"labels": self.labels, "sources": self.sources, "threshold": self.threshold}).encode(),
                dtype=np.uint8,
            ),
        )

    @classmethod
    def load(cls, path: Path) -> ExemplarDB:
        z = np.load(path)
        meta = json.loads(z["meta"].tobytes())
        keys = F.normalize(torch.from_numpy(z["keys"]).float() * torch.from_numpy(z["scale"]).float(), dim=1)
        thumbs = torch.from_numpy(from_atlas(z["atlas"].tobytes(), len(meta["labels"])))
        proj = torch.from_numpy(z["proj"]).float() if "proj" in z.files else None
        mean = torch.from_numpy(z["mean"]).float() if "mean" in z.files else None
        return cls(thumbs, keys, meta["labels"], meta["sources"], meta["threshold"], proj, mean)

    def add_folder(self, folder: Path, embed) -> int:
        """Add every image in ``folder`` (PNG, WebP, JPEG; transparency kept), keyed by a
        same-named ``.txt`` file or else by its file name (``red_apple.png`` → "red apple").
        ``embed(texts) → (n, 384)`` unit embeddings. Returns how many were added."""
        files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            return 0
        labels, rgba = [], []
        for f in files:
            txt = f.with_suffix(".txt")
            labels.append(txt.read_text().strip() if txt.exists() else re.sub(r"[_-]+", " ", f.stem).strip())
            with Image.open(f) as opened:
                im = opened.convert("RGBA")
                side = max(im.size)  # pad to a square, centred, as the corpus frames its images
                sq = Image.new("RGBA", (side, side))
                sq.paste(im, ((side - im.width) // 2, (side - im.height) // 2))
                rgba.append(np.asarray(sq.resize((64, 64), Image.Resampling.LANCZOS)))
        thumbs = thumbnails(torch.from_numpy(np.stack(rgba)).permute(0, 3, 1, 2))
        self.thumbs = torch.cat([self.thumbs, thumbs])
        self.keys = torch.cat([self.keys, self.project(embed(labels))])
        self.labels += labels
        self.sources += ["user"] * len(files)
        return len(files)
