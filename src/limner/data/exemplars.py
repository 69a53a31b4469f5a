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
- **Sampling** (``ExemplarDB``, in ``limner.model.exemplars``): the shipped database of thumbnails and key embeddings, looked
  up by the prompt's embedding; below ``threshold`` similarity no exemplar is used. Users add
  their own images by dropping them into a folder (``ExemplarDB.add_folder``).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from limner.model.exemplars import (  # noqa: F401  (the sampling side, re-exported for training code)
    CHANNELS,
    THUMB,
    ExemplarDB,
    from_atlas,
    render,
    thumbnails,
    to_atlas,
)
from limner.model.text import TextEncoder, Tokenizer, encode_pooled

if TYPE_CHECKING:
    from limner.data.trainset import TrainSet

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


def in_subset(name: str, share: float) -> bool:
    """Whether a concept (or a clip art's family) belongs to a ``share`` of all, chosen by hash."""
    return share >= 1.0 or int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) < share * 2**32


def subset_of(ts: TrainSet, share: float) -> TrainSet:
    """The pictures (not typography) of a ``share`` of the concepts, every rendition of each:
    calibration runs that compare designs on objects."""
    from limner.data.trainset import TrainSet

    concepts, families, _, eligible = record_info(ts)
    keep = [
        i for i, (c, f) in enumerate(zip(concepts, families, strict=True)) if eligible[i] and in_subset(c or f, share)
    ]
    idx = torch.tensor(keep)
    glyph_of = ts.glyph_of[idx]
    has = glyph_of >= 0
    new_glyph = torch.full_like(glyph_of, -1)
    new_glyph[has] = torch.arange(int(has.sum()))

    def sel(values: list | None) -> list | None:
        return None if values is None else [values[i] for i in keep]

    return TrainSet(
        ts.images[idx],
        ts.glyphs[glyph_of[has]],
        new_glyph,
        [ts.captions[i] for i in keep],
        [ts.keys[i] for i in keep],
        [ts.sources[i] for i in keep],
        None if ts.rgba is None else ts.rgba[idx],
        None if ts.backgrounds is None else ts.backgrounds[idx],
        sel(ts.names),
        sel(ts.styles),
        sel(ts.tones),
        None if ts.thumbs is None else ts.thumbs[idx],
    )


class Exemplars:
    """Everything exemplar conditioning needs on the training device: every record's thumbnail,
    its candidate exemplars, and a database (the eligible records) to look prompts up in."""

    def __init__(
        self,
        train: TrainSet,
        encoder: TextEncoder,
        tokenizer: Tokenizer,
        device: torch.device,
        cache: Path | None = None,
    ):
        assert train.names is not None
        concepts, families, texts, eligible = record_info(train)
        keys = encode_pooled(texts, encoder, tokenizer, device, cache).cpu()
        # neighbours are chosen by name alone: keys share their style words ("…, clip art"),
        # which would make any two clip arts look alike
        names = encode_pooled(
            train.names, encoder, tokenizer, device, cache.with_name(cache.stem + "-names.pt") if cache else None
        ).cpu()
        thumbs = train.thumbnails()
        self.cands_np = candidates(concepts, families, names, thumbs, eligible)
        self.cands = torch.from_numpy(self.cands_np).to(device)
        self.thumbs = thumbs.to(device)
        rows = np.flatnonzero(eligible)
        self.db = ExemplarDB(thumbs[rows], keys[rows], [texts[i] for i in rows], [train.sources[i] for i in rows])
        self.concepts, self.eligible = concepts, eligible

    def for_val(self, val: TrainSet, encoder: TextEncoder, tokenizer: Tokenizer, device: torch.device) -> torch.Tensor:
        """One exemplar thumbnail per validation record, from the training records: another
        source's drawing of its concept, else the nearest key above the threshold; blank if none."""
        concepts, _, texts, eligible = record_info(val)
        vkeys = encode_pooled(texts, encoder, tokenizer, device).cpu()
        out = torch.zeros(len(val), CHANNELS, THUMB, THUMB, dtype=torch.uint8)
        by_concept: dict[str, int] = {}
        for j, c in enumerate(self.concepts):
            if c is not None and self.eligible[j]:
                by_concept.setdefault(c, j)
        for i in range(len(val)):
            if not eligible[i]:
                continue
            concept = concepts[i]
            row = by_concept.get(concept) if concept else None
            if row is None:
                out[i] = self.db.lookup(vkeys[i : i + 1], [0])[0][0]
            else:
                out[i] = self.thumbs[row].cpu()
        return out
