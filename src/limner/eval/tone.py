"""The skin-tone reader: which of the five emoji skin tones an image draws.

Emoji draw skin from a fixed palette per source and tone (Fluent flat, Noto and OpenMoji use a
handful of flat colours each, Fluent's 3D renders and glossy icons shade them), so the reader is
a colour classifier calibrated on real emoji whose tone is known from their code points — the
corpus's *training* split only, never generated images:

1. Foreground: the background is fitted as a plane per colour channel to the image's border
   (robustly, so a subject touching the edge does not pull it), which is exact for the corpus's
   white, flat and gradient backgrounds; pixels far from the plane are the subject. A peach or
   brown background is not read as skin.
2. For each source style s and tone t, P(colour | s, t): how often each colour (RGB in 32 levels
   per channel, lightly smoothed) appears in the foreground of its images, every image weighing
   the same.
3. An image is read as the tone of the (s, t) that explains its foreground colours best: naive
   Bayes, the sum over pixels of log P(colour | s, t). Colours every tone shares (clothes,
   outlines, objects) cost all classes alike, so only the skin decides; a colour that is skin in
   one tone and hair in another (OpenMoji draws light-skinned people's hair in its medium-dark
   skin colour) is outweighed by the skin it comes with. The source is a hidden variable: a
   generated image is read against every style.

An image has no readable tone (``None``) when fewer than ``min_pixels`` of its foreground pixels
have a colour that tells tones apart (a yellow emoji face, a black-and-white line icon, a grey
drawing). ``limner calibrate-tones`` writes ``weights/skin-tone-reader.safetensors``; the
accuracy per source on the held-out split is in docs/evaluation.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

TONES = ["light", "medium-light", "medium", "medium-dark", "dark"]
SIDE = 64  # images are read at the eval's 64 × 64
TONELESS_STYLES = ("black and white line icon",)  # Fluent high contrast: no skin colour to read


def drawn_tones(meta: dict) -> list[str]:
    """The skin tones a record's image draws: its labels, or for a source whose files draw another
    tone than their code points name (``limner.data.catalog.DRAWN_AS``) the tones read from the
    code points and corrected — right for corpora built before the labels were fixed, and after."""
    from limner.data.catalog import DRAWN_AS, tones_drawn

    if meta.get("source", "") not in DRAWN_AS:
        return list(meta.get("skin_tones", []))
    return tones_drawn(meta["source"], meta["original_id"].rsplit(".", 1)[0])


@dataclass(frozen=True)
class ReaderConfig:
    levels: int = 32  # per RGB channel
    sigma: float = 0.5  # smoothing of the colour histograms, in levels
    floor: float = 1e-5  # probability of a colour a class never showed
    background_tolerance: float = 8.0  # least RGB distance from the fitted background that counts as subject
    min_pixels: int = 8  # skin pixels needed for a reading
    skin_ratio: float = 8.0  # skin: a colour some tone's palette holds this much more than the toneless one
    edge_step: int = 32  # skin is not an edge: no channel steps more than this to a 4-neighbour


def background(rgb: np.ndarray, ring: int = 2, rounds: int = 3) -> tuple[np.ndarray, float]:
    """(H, W, 3) uint8 → the background, (H, W, 3) float: a plane per channel fitted to the
    border ``ring`` pixels wide, refitted without the border pixels that lie far from it (a
    subject touching the edge); and how far the kept border pixels stray from it (a robust σ of
    their RGB distance: 0 for a clean drawing, more for a generated image's noisy backdrop)."""
    h, w, _ = rgb.shape
    ys, xs = np.mgrid[0:h, 0:w]
    border = np.zeros((h, w), dtype=bool)
    border[:ring] = border[-ring:] = border[:, :ring] = border[:, -ring:] = True
    design = np.stack([np.ones(h * w), xs.ravel() / max(w - 1, 1), ys.ravel() / max(h - 1, 1)], 1)  # (HW, 3)
    colours = rgb.reshape(-1, 3).astype(np.float64)
    on_border = border.ravel()
    keep = on_border.copy()
    fit = np.zeros_like(colours)
    residual = np.zeros(len(colours))
    for _ in range(rounds):
        coef, *_ = np.linalg.lstsq(design[keep], colours[keep], rcond=None)
        fit = design @ coef  # (HW, 3)
        residual = np.linalg.norm(colours - fit, axis=1)
        keep_next = on_border & (residual < max(3 * float(np.median(residual[on_border])), 6.0))
        if keep_next.sum() < 8:
            break
        keep = keep_next
    return fit.reshape(h, w, 3), 1.4826 * float(np.median(residual[keep]))


def foreground(rgb: np.ndarray, tolerance: float = 8.0) -> np.ndarray:
    """Pixels farther from the fitted background than ``tolerance`` (RGB distance), or than four
    times the backdrop's own noise where that is more: (H, W) bool."""
    bg, noise = background(rgb)
    return np.linalg.norm(rgb.astype(np.float64) - bg, axis=-1) > max(tolerance, 4 * noise)


def edges(rgb: np.ndarray, step: int) -> np.ndarray:
    """Pixels with a channel that differs by more than ``step`` from a 4-neighbour's: (H, W) bool."""
    x = rgb.astype(np.int16)
    dy = np.abs(np.diff(x, axis=0)).max(-1) > step  # (H - 1, W)
    dx = np.abs(np.diff(x, axis=1)).max(-1) > step  # (H, W - 1)
    out = np.zeros(rgb.shape[:2], dtype=bool)
    out[1:] |= dy
    out[:-1] |= dy
    out[:, 1:] |= dx
    out[:, :-1] |= dx
    return out


def colour_bins(rgb: np.ndarray, levels: int) -> np.ndarray:
    """uint8 (..., 3) → the index of each colour's cell among levels³."""
    v = rgb.astype(np.int64) * levels // 256
    return (v[..., 0] * levels + v[..., 1]) * levels + v[..., 2]


def as_rgb64(image: Image.Image | np.ndarray) -> np.ndarray:
    im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    im = im.convert("RGB")
    if im.size != (SIDE, SIDE):
        im = im.resize((SIDE, SIDE), Image.Resampling.BOX)
    return np.asarray(im)


@dataclass
class ToneReader:
    config: ReaderConfig
    styles: list[str]  # class c is (styles[c // 5], TONES[c % 5])
    log_p: np.ndarray  # (classes, levels³) log P(colour | style, tone), floored
    log_p_none: np.ndarray  # (levels³,) log P(colour | an emoji with no skin tone), floored
    meta: dict = field(default_factory=dict)

    def scores(self, image: Image.Image | np.ndarray) -> tuple[np.ndarray, int]:
        """Log-likelihood of each tone (best style per tone) and the number of skin pixels: pixels
        off the edges whose colour some tone's palette holds ``skin_ratio`` times more often than
        emoji without a tone do (the antialiased rim of any drawing mixes colours at random)."""
        rgb = as_rgb64(image)
        fg = foreground(rgb, self.config.background_tolerance)
        cells = colour_bins(rgb[fg], self.config.levels)
        ll = self.log_p[:, cells]  # (classes, P)
        per_tone = ll.reshape(len(self.styles), len(TONES), -1).max(0)  # (5, P): each tone at its likeliest style
        skin_colour = per_tone.max(0) - self.log_p_none[cells] > np.log(self.config.skin_ratio)
        skin = int((skin_colour & ~edges(rgb, self.config.edge_step)[fg]).sum())
        totals = ll.sum(1).reshape(len(self.styles), len(TONES)).max(0)  # (5,)
        return totals, skin

    def read(self, image: Image.Image | np.ndarray) -> str | None:
        """The tone the image draws, or None when too few of its pixels are skin."""
        totals, skin = self.scores(image)
        return TONES[int(totals.argmax())] if skin >= self.config.min_pixels else None

    def save(self, path: Path) -> None:
        from safetensors.numpy import save_file

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_file(
            {"log_p": self.log_p.astype(np.float16), "log_p_none": self.log_p_none.astype(np.float16)},
            str(path),
            metadata={
                "format": "limner-skin-tone-reader",
                "config": json.dumps(asdict(self.config)),
                "styles": json.dumps(self.styles),
                **{k: json.dumps(v) for k, v in self.meta.items()},
            },
        )

    @classmethod
    def load(cls, path: Path) -> ToneReader:
        from safetensors import safe_open

        with safe_open(str(path), "np") as f:
            meta = f.metadata() or {}
            log_p = f.get_tensor("log_p").astype(np.float32)
            log_p_none = f.get_tensor("log_p_none").astype(np.float32) if "log_p_none" in f.keys() else None  # noqa: SIM118
        if meta.get("format") != "limner-skin-tone-reader" or log_p_none is None:
            raise ValueError(f"{path} is not a skin-tone reader: make one with `limner calibrate-tones`")
        extra = {k: json.loads(v) for k, v in meta.items() if k not in ("format", "config", "styles")}
        return cls(ReaderConfig(**json.loads(meta["config"])), json.loads(meta["styles"]), log_p, log_p_none, extra)


def calibrate(
    samples: Iterable[tuple[np.ndarray, np.ndarray, str | None, str]], config: ReaderConfig = ReaderConfig()
) -> ToneReader:
    """A reader from (rgb (64, 64, 3) uint8, subject mask (64, 64) bool, tone or None, style)
    samples: the toned ones make the tones' palettes, those without a tone the toneless one."""
    q = config.levels
    counts: dict[str, np.ndarray] = {}
    none = np.zeros(q**3)
    images = toneless = 0
    for rgb, mask, tone, style in samples:
        cells = colour_bins(rgb[mask], q)
        if not len(cells):
            continue
        if tone is None:
            np.add.at(none, cells, 1.0 / len(cells))
            toneless += 1
            continue
        c = counts.setdefault(style, np.zeros((len(TONES), q**3)))
        np.add.at(c[TONES.index(tone)], cells, 1.0 / len(cells))  # every image weighs the same
        images += 1
    if not counts or not toneless:
        raise ValueError("calibration needs images with a known skin tone and images with none")
    styles = sorted(counts)
    table = np.concatenate([*(counts[s] for s in styles), none[None]])  # (classes + 1, q³)
    if config.sigma:
        table = np.stack(
            [ndimage.gaussian_filter(t.reshape(q, q, q), config.sigma, mode="constant").ravel() for t in table]
        )
    sums = table.sum(1, keepdims=True)
    p = np.divide(table, sums, out=np.zeros_like(table), where=sums > 0)  # a style may lack a tone
    log_p = np.log(p + config.floor).astype(np.float32)
    return ToneReader(config, styles, log_p[:-1], log_p[-1], {"images": images, "toneless_images": toneless})


def emoji_records(corpus: Path, split: str) -> Iterator[tuple[np.ndarray, np.ndarray, str | None, dict]]:
    """(rgb 64 px as the eval sees it, subject mask from the alpha channel, tone drawn or None,
    record meta) for every ``split`` emoji of at most one skin tone; None for those that draw no
    tone (no modifier, or a line icon). Clip art is left out: its people's skin is unlabelled."""
    from limner.data.shards import iter_records, shard_paths

    for rec in iter_records(shard_paths(Path(corpus), split)):
        tones = drawn_tones(rec.meta)
        if len(tones) > 1 or rec.meta["source"] == "openclipart":
            continue
        tone = None if not tones or rec.meta["style"] in TONELESS_STYLES else tones[0]
        alpha = np.asarray(rec.rgba().resize((SIDE, SIDE), Image.Resampling.BOX))[..., 3]
        yield as_rgb64(rec.image()), alpha > 127, tone, rec.meta


def toned_records(corpus: Path, split: str) -> Iterator[tuple[np.ndarray, np.ndarray, str, dict]]:
    """:func:`emoji_records` that draw exactly one skin tone."""
    for rgb, mask, tone, meta in emoji_records(corpus, split):
        if tone is not None:
            yield rgb, mask, tone, meta


def calibrate_corpus(corpus: Path, out: Path, config: ReaderConfig = ReaderConfig()) -> ToneReader:
    """Calibrate on the training split of a built corpus (subject masks from the images' alpha)
    and write the reader, with its held-out accuracy when the corpus has a validation split."""
    started = time.time()
    reader = calibrate(
        ((rgb, mask, tone, meta["style"]) for rgb, mask, tone, meta in emoji_records(corpus, "train")), config
    )
    reader.meta["seconds"] = round(time.time() - started, 1)
    reader.meta["calibrated_on"] = f"{corpus} (train split)"
    held_out = accuracy_by_source(reader, corpus, "val")
    if held_out["all"]["n"]:
        reader.meta["val_accuracy"] = round(held_out["all"]["accuracy"], 4)
    reader.save(out)
    return reader


def accuracy_by_source(reader: ToneReader, corpus: Path, split: str = "val") -> dict[str, dict]:
    """Accuracy, count and confusion matrix (rows: true tone; columns: read tone, then None) per
    source and in all, reading the composited images as the eval does (no alpha)."""
    from limner.eval.metrics import confusion

    truth: dict[str, list[str]] = {"all": []}
    read: dict[str, list[str | None]] = {"all": []}
    for rgb, _, tone, meta in toned_records(corpus, split):
        r = reader.read(rgb)
        for key in ("all", meta["source"]):
            truth.setdefault(key, []).append(tone)
            read.setdefault(key, []).append(r)
    return {
        key: {
            "n": len(truth[key]),
            "accuracy": float(np.mean([a == b for a, b in zip(truth[key], read[key], strict=True)]))
            if truth[key]
            else float("nan"),
            "confusion": confusion(truth[key], read[key]),
        }
        for key in truth
    }
