"""The training set at the denoiser's resolution, packed into one compact file.

``pack`` reads a built corpus's shards and writes ``trainset-{R}.npz``: every image resized to
R×R and stored as WebP bytes, glyph canvases as PNG bytes, and all caption phrasings as text.
The same file feeds CPU training here and travels (a few tens of MiB) to a GPU machine;
``TrainSet.load`` decodes it into uint8 tensors held in memory.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from limner.data.shards import Record, iter_records, shard_paths

WEBP_QUALITY = 85


def _encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "WEBP":
        img.save(buf, format="WEBP", quality=WEBP_QUALITY, method=6)
    else:
        img.save(buf, format=fmt, optimize=True)
    return buf.getvalue()


def _concat(blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    return np.frombuffer(b"".join(blobs), dtype=np.uint8), offsets


def resize(img: Image.Image, resolution: int) -> Image.Image:
    return img.resize(
        (resolution, resolution),
        Image.Resampling.BOX if img.width % resolution == 0 else Image.Resampling.LANCZOS,
    )


def pack(
    corpus_dir: Path,
    out: Path,
    resolution: int,
    split: str = "train",
    limit: int | None = None,
    progress=None,
) -> Path:
    """Write the packed training set for one split of a corpus; return its path."""
    paths = shard_paths(corpus_dir, split) + shard_paths(corpus_dir, split, "typography")
    if not paths:
        raise FileNotFoundError(f"no {split} shards in {corpus_dir}: run `limner data build` first")
    images, glyphs, glyph_of, captions, keys, sources = [], [], [], [], [], []
    records: list[Record] = []
    for i, rec in enumerate(iter_records(paths)):
        if limit is not None and i >= limit:
            break
        records.append(rec)
    for i, rec in enumerate(records):
        images.append(_encode(resize(rec.image(), resolution), "WEBP"))
        g = rec.glyph()
        if g is not None:
            glyph_of.append(len(glyphs))
            glyphs.append(_encode(resize(g, resolution), "PNG"))
        else:
            glyph_of.append(-1)
        captions.append(rec.meta["captions"])
        keys.append(rec.key)
        sources.append(rec.meta["source"])
        if progress:
            progress("packing", i + 1, len(records))
    img_bytes, img_off = _concat(images)
    gl_bytes, gl_off = _concat(glyphs)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out,
        resolution=np.array(resolution),
        images=img_bytes,
        image_offsets=img_off,
        glyphs=gl_bytes,
        glyph_offsets=gl_off,
        glyph_of=np.array(glyph_of, dtype=np.int32),
        meta=np.frombuffer(
            json.dumps({"captions": captions, "keys": keys, "sources": sources}).encode(),
            dtype=np.uint8,
        ),
    )
    return out


@dataclass
class TrainSet:
    images: torch.Tensor  # (N, 3, R, R) uint8
    glyphs: torch.Tensor  # (N_glyph, 1, R, R) uint8
    glyph_of: torch.Tensor  # (N,) int64: row in ``glyphs`` or -1
    captions: list[list[str]]
    keys: list[str]
    sources: list[str]

    @property
    def resolution(self) -> int:
        return self.images.shape[-1]

    def __len__(self) -> int:
        return self.images.shape[0]

    @classmethod
    def load(cls, path: Path) -> TrainSet:
        z = np.load(path)
        meta = json.loads(z["meta"].tobytes())

        def decode(buf: np.ndarray, off: np.ndarray, mode: str) -> list[np.ndarray]:
            return [
                np.asarray(Image.open(io.BytesIO(buf[off[i] : off[i + 1]].tobytes())).convert(mode))
                for i in range(len(off) - 1)
            ]

        r = int(z["resolution"])
        imgs = decode(z["images"], z["image_offsets"], "RGB")
        glyphs = decode(z["glyphs"], z["glyph_offsets"], "L")
        images = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()  # (N, 3, R, R)
        g = torch.from_numpy(np.stack(glyphs))[:, None] if glyphs else torch.zeros(0, 1, r, r, dtype=torch.uint8)
        return cls(
            images,
            g,
            torch.from_numpy(z["glyph_of"].astype(np.int64)),
            meta["captions"],
            meta["keys"],
            meta["sources"],
        )
