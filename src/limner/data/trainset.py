"""The training set at the denoiser's resolution, packed into one compact file.

``pack`` reads a built corpus's shards and writes ``trainset-{R}.npz``: every image resized to
R×R and stored as WebP bytes, glyph canvases as PNG bytes, and all caption phrasings as text.
Since version 2 it also holds each image's foreground (RGBA WebP) and background (two colours and
a direction), so training can composite on its own device and cut exemplars without the
background, plus what exemplar retrieval needs (names, styles, skin tones). Packs made for a GPU
machine leave the composites out (``composites=False``) and ``load`` makes them from the parts.
The same file feeds CPU training here and travels (a few tens of MiB) to a GPU machine;
``TrainSet.load`` decodes it into uint8 tensors held in memory.
"""

from __future__ import annotations

import io
import json
import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from limner.data.colors import BACKGROUND_COLOURS
from limner.data.shards import Record, iter_records, shard_paths

WEBP_QUALITY = 85
VERSION = 2
BG_MODES = {"flat": 0, "vertical": 1, "diagonal": 2}


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


def background_row(meta: dict) -> list[int]:
    """A record's background as 7 numbers: first colour RGB, second colour RGB, mode (BG_MODES);
    what ``composite`` draws. Records without one (typography scenes) get white."""
    bg = meta.get("background") or {"kind": "white"}
    if bg["kind"] == "white":
        return [255] * 6 + [0]
    colour = dict(BACKGROUND_COLOURS)
    a = colour[bg["colours"][0]]
    if bg["kind"] == "flat":
        return [*a, *a, 0]
    return [*a, *colour[bg["colours"][1]], BG_MODES[bg.get("direction", "vertical")]]


def composite(rgba: torch.Tensor, backgrounds: torch.Tensor) -> torch.Tensor:
    """Foregrounds (B, 4, R, R) uint8 over their backgrounds (B, 7) → (B, 3, R, R) float in
    [0, 255], as ``limner.data.colors`` draws them (flat, vertical or diagonal gradients)."""
    r = rgba.shape[-1]
    bg = backgrounds.float()
    ramp = torch.linspace(0, 1, r, device=rgba.device)
    ys, xs = ramp[:, None].expand(r, r), ramp[None, :].expand(r, r)
    mode = bg[:, 6, None, None]  # (B, 1, 1)
    w = torch.where(mode == 1, ys, torch.where(mode == 2, (xs + ys) / 2, torch.zeros_like(ys)))  # (B, R, R)
    back = bg[:, :3, None, None] * (1 - w[:, None]) + bg[:, 3:6, None, None] * w[:, None]  # (B, 3, R, R)
    alpha = rgba[:, 3:].float() / 255
    return rgba[:, :3].float() * alpha + back.round() * (1 - alpha)


def _pack_record(job: tuple[Record, int, bool]) -> tuple[bytes | None, bytes, bytes | None, list[str]]:
    """One record's encoded composite (if wanted), foreground, glyph canvas, and captions."""
    from limner.data.captions import recaption

    rec, resolution, composites = job
    image = _encode(resize(rec.image(), resolution), "WEBP") if composites else None
    g = rec.glyph()
    glyph = _encode(resize(g, resolution), "PNG") if g is not None else None
    return image, _encode(resize(rec.rgba(), resolution), "WEBP"), glyph, recaption(rec.meta)


def pack(
    corpus_dir: Path,
    out: Path,
    resolution: int,
    split: str = "train",
    limit: int | None = None,
    progress=None,
    composites: bool = True,
    workers: int = 2,
) -> Path:
    """Write the packed training set for one split of a corpus; return its path. Without
    ``composites`` only the foregrounds and backgrounds are stored (smaller, for travel)."""
    paths = shard_paths(corpus_dir, split) + shard_paths(corpus_dir, split, "typography")
    if not paths:
        raise FileNotFoundError(f"no {split} shards in {corpus_dir}: run `limner data build` first")
    images, fgs, glyph_of, captions, keys, sources = [], [], [], [], [], []
    glyphs: list[bytes] = []
    names, styles, tones, backgrounds = [], [], [], []
    records: list[Record] = []
    for i, rec in enumerate(iter_records(paths)):
        if limit is not None and i >= limit:
            break
        records.append(rec)
    jobs = [(rec, resolution, composites) for rec in records]
    if workers > 1:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(workers) as pool:
            done = list(pool.imap(_pack_record, jobs, chunksize=64))
    else:
        done = [_pack_record(j) for j in jobs]
    for i, (rec, (image, fg, glyph, caps)) in enumerate(zip(records, done, strict=True)):
        if image is not None:
            images.append(image)
        fgs.append(fg)
        backgrounds.append(background_row(rec.meta))
        names.append(rec.meta.get("name", ""))
        styles.append(rec.meta.get("style", ""))
        tones.append(rec.meta.get("skin_tones", []))
        if glyph is not None:
            glyph_of.append(len(glyphs))
            glyphs.append(glyph)
        else:
            glyph_of.append(-1)
        captions.append(caps)
        keys.append(rec.key)
        sources.append(rec.meta["source"])
        if progress:
            progress("packing", i + 1, len(records))
    parts = {}
    if composites:
        parts["images"], parts["image_offsets"] = _concat(images)
    parts["fg"], parts["fg_offsets"] = _concat(fgs)
    parts["glyphs"], parts["glyph_offsets"] = _concat(glyphs)
    meta = {"captions": captions, "keys": keys, "sources": sources, "names": names, "styles": styles, "tones": tones}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")  # others may be reading the old file: swap at once
    np.savez(
        tmp,
        version=np.array(VERSION),
        resolution=np.array(resolution),
        **parts,  # type: ignore[arg-type]  # numpy's stub reads **arrays as savez's allow_pickle
        backgrounds=np.array(backgrounds, dtype=np.uint8).reshape(-1, 7),
        glyph_of=np.array(glyph_of, dtype=np.int32),
        meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
    )
    tmp.replace(out)
    return out


def version_of(path: Path) -> int:
    with np.load(path) as z:
        return int(z["version"]) if "version" in z.files else 1


@dataclass
class TrainSet:
    images: torch.Tensor  # (N, 3, R, R) uint8, composited
    glyphs: torch.Tensor  # (N_glyph, 1, R, R) uint8
    glyph_of: torch.Tensor  # (N,) int64: row in ``glyphs`` or -1
    captions: list[list[str]]
    keys: list[str]
    sources: list[str]
    rgba: torch.Tensor | None = None  # (N, 4, R, R) uint8 foregrounds (version ≥ 2)
    backgrounds: torch.Tensor | None = None  # (N, 7) uint8, see background_row
    names: list[str] | None = None
    styles: list[str] | None = None
    tones: list[list[str]] | None = None
    thumbs: torch.Tensor | None = None  # (N, 4, 16, 16) exemplar thumbnails, when packed without foregrounds

    def thumbnails(self) -> torch.Tensor:
        """Every record's exemplar thumbnail (``limner.data.exemplars.thumbnails``)."""
        from limner.data.exemplars import thumbnails

        if self.thumbs is not None:
            return self.thumbs
        if self.rgba is None:
            raise SystemExit("this packed training set has neither foregrounds nor thumbnails: pack it again")
        return thumbnails(self.rgba)

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

        def stack(arrays: list[np.ndarray]) -> torch.Tensor:
            return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # (N, C, R, R)

        if meta.get("tones"):  # packs from corpora built before the Fluent 3D labels were fixed
            from limner.data.captions import as_drawn

            rows = zip(meta["sources"], meta["keys"], meta["tones"], meta["captions"], strict=True)
            fixed = [as_drawn(*row) for row in rows]
            meta["tones"], meta["captions"] = [t for t, _ in fixed], [c for _, c in fixed]
        r = int(z["resolution"])
        rgba = backgrounds = None
        if "fg" in z.files:
            rgba = stack(decode(z["fg"], z["fg_offsets"], "RGBA"))
            backgrounds = torch.from_numpy(z["backgrounds"])
        if "images" in z.files:
            images = stack(decode(z["images"], z["image_offsets"], "RGB"))
        else:
            assert rgba is not None and backgrounds is not None
            images = composite(rgba, backgrounds).round().to(torch.uint8)
        thumbs = None
        if "thumbs_atlas" in z.files:
            from limner.data.exemplars import from_atlas

            thumbs = torch.from_numpy(from_atlas(z["thumbs_atlas"].tobytes(), len(meta["keys"])))
        glyphs = decode(z["glyphs"], z["glyph_offsets"], "L")
        g = torch.from_numpy(np.stack(glyphs))[:, None] if glyphs else torch.zeros(0, 1, r, r, dtype=torch.uint8)
        return cls(
            images,
            g,
            torch.from_numpy(z["glyph_of"].astype(np.int64)),
            meta["captions"],
            meta["keys"],
            meta["sources"],
            rgba,
            backgrounds,
            meta.get("names"),
            meta.get("styles"),
            meta.get("tones"),
            thumbs,
        )
