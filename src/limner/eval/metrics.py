"""Evaluation metrics as pure functions of arrays and strings (no models, no files)."""

from __future__ import annotations

import re

import numpy as np
from scipy import linalg

# -- prompt fidelity -----------------------------------------------------------------------------


def retrieval_top1(
    image_emb: np.ndarray, text_emb: np.ndarray, k: int = 32, seed: int = 0, distractors: np.ndarray | None = None
) -> float:
    """Share of images whose own prompt scores highest among itself and k − 1 other prompts.

    Row i of ``image_emb`` belongs to row i of ``text_emb``; both L2-normalised. Distractors are
    drawn at random (seeded) from the other rows, or given: row i of ``distractors`` (N, k − 1)
    indexes image i's (see :func:`hard_negatives`). Chance level is 1/k."""
    if len(image_emb) < 2:
        return float("nan")
    return float(retrieval_hits(image_emb, text_emb, k, seed, distractors).mean())


def retrieval_hits(
    image_emb: np.ndarray, text_emb: np.ndarray, k: int = 32, seed: int = 0, distractors: np.ndarray | None = None
) -> np.ndarray:
    """Per image, whether :func:`retrieval_top1` counts it (N,) bool: the same seeded
    distractors, so two models drawn from the same prompts are scored against the same ones."""
    n = len(image_emb)
    rng = np.random.default_rng(seed)
    sims = image_emb @ text_emb.T  # (N, N)
    hits = np.zeros(n, dtype=bool)
    for i in range(n if n >= 2 else 0):
        if distractors is None:
            others = np.delete(np.arange(n), i)
            distract = rng.choice(others, size=min(k - 1, n - 1), replace=False)
        else:
            distract = distractors[i]
        hits[i] = sims[i, i] > sims[i, distract].max()
    return hits


def hard_negatives(signatures: np.ndarray, k: int = 32) -> np.ndarray:
    """For each row, the k − 1 other rows with the most similar signature (rows L2-normalised),
    most similar first: (N, k − 1) indices. With colour signatures of the images a prompt set
    stands for, every prompt competes with the prompts whose pictures share its colours."""
    sims = signatures @ signatures.T  # (N, N)
    np.fill_diagonal(sims, -np.inf)
    k1 = min(k - 1, len(signatures) - 1)
    return np.argsort(-sims, axis=1, kind="stable")[:, :k1]


def colour_signature(rgb: np.ndarray, side: int = 4) -> np.ndarray:
    """Where which colours are, and nothing else: the image shrunk to side × side, normalised.
    Two images with near-equal signatures are the same blobs of colour, whatever they depict."""
    from PIL import Image

    img = Image.fromarray(rgb).convert("RGB").resize((side, side), Image.Resampling.BOX)
    v = np.asarray(img, dtype=np.float32).ravel() / 255
    return v / (np.linalg.norm(v) + 1e-6)


# -- distribution distance -----------------------------------------------------------------------


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, FID);
    NaN when either set has fewer than two rows."""
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        eps = np.eye(len(s1)) * 1e-6
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


# -- text rendering ------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^0-9a-z]+", text.lower()) if w]


def word_accuracy(targets: list[str], ocr_text: str) -> float:
    """Share of target words found among the OCR'd words, case-insensitive, each OCR word used
    once (CVTG-2K / MARIO-Eval style)."""
    want = [w for t in targets for w in _words(t)]
    if not want:
        return float("nan")
    have = _words(ocr_text)
    found = 0
    for w in want:
        if w in have:
            have.remove(w)
            found += 1
    return found / len(want)


def edit_distance(a: str, b: str, within: bool = False) -> int:
    """Levenshtein distance; with ``within``, the fewest edits that turn ``a`` into some stretch
    of ``b`` (semi-global alignment: what ``b`` holds before and after the stretch costs nothing)."""
    prev = [0] * (len(b) + 1) if within else list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return min(prev) if within else prev[-1]


def normalized_edit_distance(target: str, ocr_text: str) -> float:
    """Edit distance between the target and the OCR'd text (both lower-cased, words joined by one
    space), divided by the longer length: 0 = exact, 1 = nothing in common."""
    t, o = " ".join(_words(target)), " ".join(_words(ocr_text))
    if not t and not o:
        return 0.0
    return edit_distance(t, o) / max(len(t), len(o))


def substring_edit_distance(target: str, text: str) -> int:
    """The fewest edits that turn ``target`` into some stretch of ``text``."""
    return edit_distance(target, text, within=True)


def span_edit_distance(spans: list[str], ocr_texts: list[str]) -> float:
    """How far the image's text is from what the prompt quotes: for each quoted span, the edit
    distance to the closest stretch of any OCR reading (lower-cased, words joined by one space),
    summed over the spans and divided by their total length. 0 = every span spelled exactly;
    text elsewhere in the image (labels OCR finds in arrows or icons) is not counted, unlike
    :func:`normalized_edit_distance`."""
    readings = [" ".join(_words(t)) for t in ocr_texts] or [""]
    total = length = 0
    for span in spans:
        s = " ".join(_words(span))
        if not s:
            continue
        total += min(substring_edit_distance(s, r) for r in readings)
        length += len(s)
    return total / length if length else float("nan")


# -- skin tone -----------------------------------------------------------------------------------

TONES = ["light", "medium-light", "medium", "medium-dark", "dark"]


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 sRGB (..., 3) → CIELAB (D65)."""
    c = rgb.astype(np.float64) / 255.0
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def ita_degrees(lab: np.ndarray) -> np.ndarray:
    """Individual typology angle: arctan((L* − 50) / b*) in degrees (Chardon et al. 1991)."""
    return np.degrees(np.arctan2(lab[..., 0] - 50, lab[..., 2]))


def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """Pixels whose colour is plausibly skin: warm hue (R ≥ G ≥ B-ish), not grey, not saturated
    yellow (emoji faces), over the whole range from pale to deep brown."""
    lab = srgb_to_lab(rgb)
    lightness, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    r, g, bl = (rgb[..., i].astype(np.int32) for i in range(3))
    warm = (r >= g) & (g >= bl - 10) & (r - bl > 15)
    not_yellow = ~((b > 55) & (a < 12))  # the classic yellow emoji face is not skin
    return warm & not_yellow & (a > 4) & (b > 6) & (lightness > 12) & (lightness < 92)


def tone_references(rgbs: dict[str, tuple[int, int, int]]) -> dict[str, float]:
    """ITA of reference colours (e.g. the five emoji skin tones)."""
    return {k: float(ita_degrees(srgb_to_lab(np.array(v, dtype=np.uint8)))) for k, v in rgbs.items()}


# The five emoji skin tones as the corpus draws them: median colour of the skin pixels of 3,142
# single-tone Fluent, Noto and OpenMoji training images (first ten shards; median ITA 62.5°,
# 46.6°, 25.8°, −11.9°, −41.2°). Re-measure with the snippet in docs/evaluation.md.
EMOJI_TONES = {
    "light": (243, 189, 170),
    "medium-light": (222, 184, 144),
    "medium": (193, 141, 104),
    "medium-dark": (150, 101, 80),
    "dark": (105, 70, 49),
}


def classify_tone(rgb: np.ndarray, references: dict[str, float] | None = None, min_pixels: int = 30) -> str | None:
    """Nearest of the five tones by median ITA of the skin pixels; None if too few are found."""
    refs = references or tone_references(EMOJI_TONES)
    mask = skin_mask(rgb)
    if mask.sum() < min_pixels:
        return None
    ita = float(np.median(ita_degrees(srgb_to_lab(rgb[mask]))))
    return min(refs, key=lambda k: abs(refs[k] - ita))


def confusion(truth: list[str], predicted: list[str | None], labels: list[str] = TONES) -> list[list[int]]:
    """Rows: true tone; columns: predicted tone, then 'none' (no skin found)."""
    idx = {t: i for i, t in enumerate(labels)}
    m = [[0] * (len(labels) + 1) for _ in labels]
    for t, p in zip(truth, predicted, strict=True):
        m[idx[t]][idx[p] if p in idx else len(labels)] += 1
    return m


# -- memorisation --------------------------------------------------------------------------------


def copy_signature(rgb: np.ndarray, side: int = 32) -> np.ndarray:
    """A small, mean-centred, normalised colour thumbnail: near copies of an image (same drawing
    at the same place, give or take brightness and noise) have near-equal signatures."""
    from PIL import Image

    img = Image.fromarray(rgb).convert("RGB").resize((side, side), Image.Resampling.BOX)
    v = np.asarray(img, dtype=np.float32).ravel()
    v = v - v.mean()
    return v / (np.linalg.norm(v) + 1e-6)


def nearest(queries: np.ndarray, keys: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Index and cosine similarity of each query's nearest key (rows L2-normalised)."""
    best_i = np.zeros(len(queries), dtype=np.int64)
    best_s = np.full(len(queries), -np.inf, dtype=np.float32)
    for start in range(0, len(keys), chunk):
        s = queries @ keys[start : start + chunk].T
        i = s.argmax(1)
        v = s[np.arange(len(queries)), i]
        better = v > best_s
        best_s[better] = v[better]
        best_i[better] = i[better] + start
    return best_i, best_s
