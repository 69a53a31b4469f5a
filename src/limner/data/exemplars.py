"""Exemplars: a blurred picture of the prompt's concept, drawn by someone else, for the denoiser
to re-draw (retrieval conditioning: Blattmann et al. 2022, "Semi-Parametric Neural Image
Synthesis"; Sheynin et al. 2022, kNN-Diffusion; Chen et al. 2022, Re-Imagen).

An exemplar is a 16×16 thumbnail of an image's foreground (premultiplied RGB + alpha, so the
background does not come along), scaled back up to the denoiser's resolution: enough for a
silhouette and its main colours, too little to copy a drawing.

- **Training** (``candidates``): for each record, up to ``k`` other records of the same concept
  drawn by *another* source (Fluent 3D for an OpenMoji target, any skin tone); records without
  one take the nearest concepts by caption-key embedding instead, if close enough. Never the
  record itself, never its own source's variants of it (its skin tones), never a near-duplicate
  thumbnail. ``render`` jitters (shift, scale, flip) and greys them on the training device.
- **Sampling** (``ExemplarDB``): the shipped database of thumbnails and key embeddings, looked
  up by the prompt's embedding; below ``threshold`` similarity no exemplar is used. Users add
  their own images by dropping them into a folder (``ExemplarDB.add_folder``).
"""

from __future__ import annotations

import io
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

if TYPE_CHECKING:
    from limner.data.trainset import TrainSet

THUMB = 16  # thumbnail side: a silhouette, not a drawing
CHANNELS = 4  # premultiplied RGB + alpha
EMOJI_SOURCES = ("fluent-3d", "fluent-color", "fluent-flat", "fluent-high-contrast", "openmoji", "noto")
PLAIN_STYLE = {  # how a key names each source's style (the caption vocabulary's first word)
    "3D render": "3D render",
    "glossy colour icon": "colourful gradient icon",
    "flat icon": "flat icon",
    "black and white line icon": "black and white line icon",
    "outlined flat emoji": "flat emoji with black outlines",
    "cartoon emoji": "cartoon emoji",
    "clip art": "clip art",
}
IMAGE_SUFFIXES = (".png", ".webp", ".jpg", ".jpeg")


def concept_of(source: str, name: str) -> str | None:
    """The concept an image shows, shared across sources: an emoji's name; None for clip art
    and typography (their titles are their own)."""
    return name.strip().lower() if source in EMOJI_SOURCES and name else None


def family_of(source: str, name: str, key: str) -> str:
    """Images one source drew of one thing (an emoji's skin tones): never each other's exemplar."""
    concept = concept_of(source, name)
    return f"{source}:{concept}" if concept else f"{source}:{key}"


def key_text(name: str, tones: list[str], style: str) -> str:
    """What the database is searched by: name, skin tone and style, no background."""
    from limner.data.captions import tone_phrase

    return ", ".join(p for p in (name, tone_phrase(tones), PLAIN_STYLE.get(style, style)) if p)


def record_info(ts: TrainSet) -> tuple[list[str | None], list[str], list[str], np.ndarray]:
    """Per record of a packed set: concept, family, key text, and whether it may give or get an
    exemplar (pictures, not typography scenes)."""
    if ts.names is None or ts.styles is None or ts.tones is None:
        raise SystemExit("this packed training set predates exemplars (version 1): pack it again")
    concepts = [concept_of(s, n) for s, n in zip(ts.sources, ts.names, strict=True)]
    families = [family_of(s, n, k) for s, n, k in zip(ts.sources, ts.names, ts.keys, strict=True)]
    texts = [key_text(n, t, st) for n, t, st in zip(ts.names, ts.tones, ts.styles, strict=True)]
    eligible = (ts.glyph_of < 0).numpy() & np.array([s != "typography" for s in ts.sources])
    return concepts, families, texts, eligible


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


def _near_duplicates(thumbs: torch.Tensor, i: int, others: np.ndarray, limit: float) -> np.ndarray:
    """Which of ``others`` have a thumbnail nearly equal to record ``i``'s (cosine ≥ ``limit``
    of the mean-removed thumbnails)."""
    if len(others) == 0:
        return np.zeros(0, dtype=bool)
    x = thumbs[torch.as_tensor(np.concatenate([[i], others]))].float().flatten(1)
    x = F.normalize(x - x.mean(1, keepdim=True), dim=1)
    return (x[1:] @ x[0] >= limit).numpy()


def candidates(
    concepts: list[str | None],
    families: list[str],
    keys: torch.Tensor,
    thumbs: torch.Tensor,
    eligible: np.ndarray,
    k: int = 8,
    min_similarity: float = 0.75,
    duplicate: float = 0.97,
    seed: int = 0,
) -> np.ndarray:
    """(N, k) int32 exemplar indices per record, −1 where there are fewer (see the module doc).

    ``concepts`` from ``concept_of`` (None: no exemplar by concept), ``families`` from
    ``family_of``, ``keys`` (N, D) unit embeddings of what each record shows (its name),
    ``thumbs`` from ``thumbnails``; only ``eligible`` records (N,) bool give or get exemplars
    (not typography scenes: their text comes from the glyph canvas)."""
    n = len(concepts)
    rng = np.random.default_rng(seed)
    out = np.full((n, k), -1, dtype=np.int32)
    has_shape = np.asarray(eligible, dtype=bool)
    by_concept: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(concepts):
        if c is not None and has_shape[i]:
            by_concept[c].append(i)
    need_neighbours = []
    for i, c in enumerate(concepts):
        if not has_shape[i]:
            continue
        pool = [j for j in by_concept.get(c, []) if families[j] != families[i]] if c is not None else []
        if pool:
            pool_a = np.array(pool)
            pool_a = pool_a[~_near_duplicates(thumbs, i, pool_a, duplicate)]
        else:
            pool_a = np.zeros(0, dtype=np.int64)
        if len(pool_a):
            by_family: dict[str, list[int]] = defaultdict(list)  # spread the picks over sources
            for j in rng.permutation(pool_a).tolist():
                by_family[families[j]].append(j)
            picks: list[int] = []
            while len(picks) < k and any(by_family.values()):
                for fam in sorted(by_family):
                    if by_family[fam] and len(picks) < k:
                        picks.append(by_family[fam].pop())
            out[i, : len(picks)] = picks
        else:
            need_neighbours.append(i)
    eligible = np.flatnonzero(has_shape)
    keys_e = keys[torch.as_tensor(eligible)].float()
    fam_arr = np.array(families)
    for start in range(0, len(need_neighbours), 1024):
        rows = need_neighbours[start : start + 1024]
        sims = keys[torch.as_tensor(rows)].float() @ keys_e.T  # (b, E)
        top = sims.topk(min(len(eligible), 4 * k + 8), dim=1)
        for r, i in enumerate(rows):
            ok = (top.values[r] >= min_similarity).numpy()
            cand = eligible[top.indices[r].numpy()[ok]]
            cand = cand[(cand != i) & (fam_arr[cand] != families[i])]
            cand = cand[~_near_duplicates(thumbs, i, cand, duplicate)][:k]
            out[i, : len(cand)] = cand
    return out


def pick(cands: torch.Tensor, rows: torch.Tensor, generator: torch.Generator, dropout: float) -> torch.Tensor:
    """One exemplar index per row (a random valid candidate), −1 for none or when dropped."""
    c = cands[rows]  # (B, k)
    valid = c >= 0
    count = valid.sum(1)
    b = len(rows)
    choice = (torch.rand(b, generator=generator, device=c.device) * count).long().clamp(max=c.shape[1] - 1)
    chosen = c.gather(1, choice[:, None])[:, 0]  # candidates are packed at the front
    keep = (count > 0) & (torch.rand(b, generator=generator, device=c.device) >= dropout)
    return torch.where(keep, chosen, torch.full_like(chosen, -1))


def gather(thumbs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Thumbnails at ``index`` (B,), blank (all zero) where it is −1."""
    t = thumbs[index.clamp(min=0)]
    return t * (index >= 0)[:, None, None, None].to(t.dtype)


# -- the database that ships with the weights -----------------------------------------------------


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
        space = {} if self.proj is None or self.mean is None else {"proj": self.proj.half(), "mean": self.mean.half()}
        np.savez(
            path,
            atlas=np.frombuffer(to_atlas(self.thumbs.numpy(), quality), dtype=np.uint8),
            keys=(k / scale).round().to(torch.int8).numpy(),
            scale=scale.half().numpy(),
            **{k: v.numpy() for k, v in space.items()},
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


def shrink(db: ExemplarDB, dims: int, one_per_family: list[str] | None = None) -> ExemplarDB:
    """A smaller database to ship: keys projected onto their ``dims`` principal directions, and
    with ``one_per_family`` (a family per entry, see ``family_of``) only the first entry of each
    family (one skin tone of each source's person: the tone comes from the prompt's words)."""
    rows = list(range(len(db)))
    if one_per_family is not None:
        first: dict[str, int] = {}
        for i, fam in enumerate(one_per_family):
            first.setdefault(fam, i)
        rows = sorted(first.values())
    idx = torch.tensor(rows)
    keys = db.keys[idx].float()
    mean = keys.mean(0)
    _, _, v = torch.linalg.svd(keys - mean, full_matrices=False)
    proj = v[:dims].T.contiguous()  # (384, D)
    return ExemplarDB(
        db.thumbs[idx],
        F.normalize((keys - mean) @ proj, dim=1),
        [db.labels[i] for i in rows],
        [db.sources[i] for i in rows],
        db.threshold,
        proj,
        mean,
    )


def build(corpus: Path, out: Path, dims: int = 64, threshold: float = 0.6, every_tone: bool = False) -> ExemplarDB:
    """The database to ship beside a model: every picture of the corpus's training split, keyed
    by name, skin tone and style, shrunk (``shrink``) and saved to ``out``."""
    from limner.data.trainset import TrainSet
    from limner.model.text import TextEncoder, Tokenizer, encode_pooled

    ts = TrainSet.load(Path(corpus) / "trainset-64-train.npz")
    _, families, texts, eligible = record_info(ts)
    keys = encode_pooled(
        texts, TextEncoder.load(), Tokenizer(), torch.device("cpu"), Path(corpus) / "exemplar-keys-64.pt"
    )
    rows = np.flatnonzero(eligible)
    full = ExemplarDB(
        ts.thumbnails()[torch.as_tensor(rows)],
        keys[torch.as_tensor(rows)],
        [texts[i] for i in rows],
        [ts.sources[i] for i in rows],
        threshold,
    )
    db = shrink(full, dims, None if every_tone else [families[i] for i in rows])
    db.save(out)
    return db


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description="Build the exemplar database that ships beside a model.")
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--out", type=Path, required=True, help="e.g. weights/limner-2/exemplars.npz")
    p.add_argument("--dims", type=int, default=64, help="key dimensions kept (principal directions)")
    p.add_argument("--threshold", type=float, default=0.6, help="least similarity for an exemplar to be used")
    p.add_argument("--every-tone", action="store_true", help="keep every skin tone of every source's person")
    a = p.parse_args()
    db = build(a.corpus, a.out, a.dims, a.threshold, a.every_tone)
    print(f"{len(db)} exemplars, {a.out.stat().st_size / 1e6:.2f} MB in {a.out}")
