"""An invisible watermark on the luminance: a periodic spread-spectrum tile carrying a 32-bit
payload under a rate-1/3 convolutional code and a CRC-16, found again after cropping and
resizing by the tile's own periodicity.

The method, after Kalker et al. (self-referencing periodic marks) and Kutter (ACF-based
resynchronisation):

- ``TILE``×``TILE`` pixels (at the scale it was embedded) hold ``GRID``×``GRID`` cells, band-limited
  by periodic (FFT) interpolation so the mark lives below an eighth of the sampling rate: JPEG keeps
  it and halving the size does not alias it.
- Each cell carries a public pilot chip (30 % of the energy) plus one chip of the coded payload
  (the 48 information bits, 32 of payload and 16 of CRC, convolutionally coded, spread and
  repeated over 256 cells).
- The energy goes where the detector looks (away from strong edges) and where a brightening will
  not clip it away (not on near-white backdrops), at a PSNR of 38.5 dB.
- The tile repeats over the whole image. A crop keeps whole periods; a resize changes the period,
  which the autocorrelation of the whitened image reveals. The detector resamples to the period,
  folds the image onto one tile (averaging every period it has), finds the shift by correlating
  with the pilot, then decodes the payload with a soft Viterbi decoder and checks its CRC.

The pilot is public: anyone running Limner can tell an image carries a Limner mark. What the
payload says is only readable through the operator's database (the payload is an encrypted row
id). A deliberate attacker who knows the scheme can remove or forge the mark; the C2PA manifest,
not the mark, is the signed statement.
"""

from __future__ import annotations

import binascii
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

TILE = 64  # period of the mark in pixels, at the scale it is embedded (256-px images)
GRID = 16  # cells per tile side
SEED = 20_250_416  # public: the pilot, spreading and cell order
TARGET_PSNR = 38.5  # dB: the energy the mark may take (the acceptance floor is 38)
EDGE = 4.0  # levels per pixel: a gradient this steep halves a pixel's weight
INFO_BITS = 48  # 32 payload bits + CRC-16
POLYS = (0o133, 0o171, 0o165)  # K=7, rate 1/3 (the LTE convolutional code)
K = 7
PILOT_SHARE = 0.3  # of the mark's energy; the rest carries the payload
Z_THRESHOLD = 3.5  # pilot peak (standard deviations) before a decode is tried: the CRC is the real gate
CLIP_AT = 232.0  # a channel this bright is clipped by a 10 % brightening: the mark there would be lost
MIN_SCALE, MAX_SCALE = 0.3, 6.0  # periods searched, as multiples of TILE
LUMA = np.array([0.299, 0.587, 0.114])
DETECT_SIDE = 512  # larger images are looked at shrunk to this shorter side


@dataclass(frozen=True)
class Detection:
    """What the detector found: ``payload`` (None unless the CRC holds), the pilot's peak in
    standard deviations, and the scale and shift it was found at."""

    payload: int | None
    z: float
    scale: float
    shift: tuple[int, int]

    @property
    def found(self) -> bool:
        return self.payload is not None

    @property
    def false_alarm(self) -> float:
        """Chance that an unmarked image yields a decode this strong: the pilot's tail over the
        shifts and scales searched, times the CRC's 2⁻¹⁶ for each of the (at most 17) decodes tried."""
        tail = 0.5 * math.erfc(self.z / math.sqrt(2)) * TILE * TILE * 64
        return min(1.0, tail) * 17 * 2.0**-16


# -- the patterns ------------------------------------------------------------------------------------


def _patterns() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pilot chips, spreading chips, cell → coded-bit index), each GRID×GRID, from ``SEED``."""
    rng = np.random.default_rng(SEED)
    pilot = rng.choice([-1.0, 1.0], size=(GRID, GRID))
    spread = rng.choice([-1.0, 1.0], size=(GRID, GRID))
    coded = (INFO_BITS + K - 1) * len(POLYS)
    order = rng.permutation(GRID * GRID) % coded  # every coded bit on 1 or 2 cells
    return pilot, spread, order.reshape(GRID, GRID)


PILOT, SPREAD, ORDER = _patterns()


def upsample(cells: np.ndarray, size: int = TILE) -> np.ndarray:
    """Periodic band-limited interpolation of a GRID×GRID array to size×size (FFT zero-padding)."""
    f = np.fft.fft2(cells)  # (G, G)
    g = cells.shape[0]
    big = np.zeros((size, size), complex)
    h = g // 2
    big[:h, :h], big[:h, -h:], big[-h:, :h], big[-h:, -h:] = f[:h, :h], f[:h, -h:], f[-h:, :h], f[-h:, -h:]
    return np.real(np.fft.ifft2(big)) * (size / g) ** 2  # (S, S)


def downsample(tile: np.ndarray) -> np.ndarray:
    """The adjoint of ``upsample``: a TILE×TILE tile's lowest GRID×GRID frequencies, as cells."""
    f = np.fft.fft2(tile)
    h = GRID // 2
    small = np.zeros((GRID, GRID), complex)
    small[:h, :h], small[:h, -h:], small[-h:, :h], small[-h:, -h:] = f[:h, :h], f[:h, -h:], f[-h:, :h], f[-h:, -h:]
    return np.real(np.fft.ifft2(small))  # (G, G)


PILOT_TILE = upsample(PILOT)
PILOT_TILE /= np.sqrt((PILOT_TILE**2).mean())


# -- the code ----------------------------------------------------------------------------------------


def _parity(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    for s in (4, 2, 1):
        x ^= x >> s
    return x & 1


_REG = np.arange(2**K)  # (b << 6) | state
_OUT = np.stack([_parity(_REG & p) for p in POLYS], axis=1)  # (128, 3) coded bits per register


def payload_bits(payload: int) -> np.ndarray:
    """32 payload bits then their CRC-16 (CCITT), most significant first."""
    if not 0 <= payload < 2**32:
        raise ValueError(f"a watermark payload is 32 bits, got {payload}")
    data = payload.to_bytes(4, "big")
    crc = binascii.crc_hqx(data, 0xFFFF)
    word = (payload << 16) | crc
    return np.array([(word >> (INFO_BITS - 1 - i)) & 1 for i in range(INFO_BITS)], dtype=np.int64)


def encode(bits: np.ndarray) -> np.ndarray:
    """Convolutional code with a zero tail: (INFO_BITS + 6) × 3 coded bits."""
    state, out = 0, []
    for b in [*bits.tolist(), *([0] * (K - 1))]:
        reg = (b << (K - 1)) | state
        out.extend(_OUT[reg].tolist())
        state = reg >> 1
    return np.array(out, dtype=np.int64)


def viterbi(soft: np.ndarray) -> np.ndarray:
    """Soft-decision Viterbi for ``encode``: ``soft`` > 0 means coded bit 0; → information bits."""
    steps = len(soft) // len(POLYS)
    y = soft.reshape(steps, len(POLYS))
    n = 2 ** (K - 1)
    ns = np.arange(n)
    pred = np.stack([((ns << 1) & (n - 1)), ((ns << 1) & (n - 1)) | 1], axis=1)  # (64, 2) previous states
    reg = ((ns >> (K - 2)) << (K - 1))[:, None] | pred  # (64, 2) register of each transition
    sym = 1.0 - 2.0 * _OUT[reg]  # (64, 2, 3)
    metric = np.full(n, -np.inf)
    metric[0] = 0.0
    choice = np.zeros((steps, n), dtype=np.int64)
    for t in range(steps):
        cand = metric[pred] + sym @ y[t]  # (64, 2)
        choice[t] = cand.argmax(1)
        metric = cand.max(1)
    state, bits = 0, []
    for t in range(steps - 1, -1, -1):
        bits.append(state >> (K - 2))
        state = pred[state, choice[t, state]]
    return np.array(bits[::-1][:INFO_BITS], dtype=np.int64)


def check(bits: np.ndarray) -> int | None:
    """The payload if the CRC holds, else None."""
    word = int("".join(map(str, bits.tolist())), 2)
    payload, crc = word >> 16, word & 0xFFFF
    return payload if binascii.crc_hqx(payload.to_bytes(4, "big"), 0xFFFF) == crc else None


# -- embedding ---------------------------------------------------------------------------------------


def chips(payload: int) -> np.ndarray:
    """The GRID×GRID cell values the detector should see for ``payload``: pilot plus spread code."""
    coded = 1.0 - 2.0 * encode(payload_bits(payload))  # ±1
    return np.sqrt(PILOT_SHARE) * PILOT + np.sqrt(1 - PILOT_SHARE) * coded[ORDER] * SPREAD  # (G, G)


def unit(width: int, height: int) -> int:
    """Pixels per mark pixel: 1 up to 383 px, then in proportion (a 1024-px image gets 4)."""
    return max(1, round(min(width, height) / 256))


def embed(
    image: Image.Image, payload: int, psnr_db: float = TARGET_PSNR, keep: np.ndarray | None = None
) -> Image.Image:
    """``image`` with the mark added to its luminance (the same delta on R, G and B), its energy
    placed where the detector looks (away from strong edges, ``weights``) and scaled so the
    marked image's PSNR against ``image`` is ``psnr_db`` (pixels clipped at 0 or 255 included).
    ``keep`` (H×W, True: left exactly as they are) confines the mark, and the PSNR, to the rest."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64)  # (H, W, 3)
    h, w = rgb.shape[:2]
    u = unit(w, h)
    tile = upsample(chips(payload))
    if u > 1:
        tile = _resize(tile, (TILE * u, TILE * u))
    shape = _tiled(tile, (h, w)) * np.maximum(weights(rgb @ LUMA), 0.1) * headroom(rgb)  # (H, W)
    area = np.ones((h, w), bool) if keep is None else ~keep
    if not area.any():
        return image.copy()
    shape[~area] = 0.0
    shape /= np.sqrt((shape[area] ** 2).mean())
    target = (255.0 / 10 ** (psnr_db / 20)) ** 2  # mean squared error allowed (over the marked area)
    amp = np.sqrt(target)
    for _ in range(3):  # clipping at 0 and 255 removes part of the delta: give the rest more
        out = np.clip(np.rint(rgb + amp * shape[..., None]), 0, 255)
        mse = float(((out - rgb)[area] ** 2).mean())
        amp *= min(1.5, np.sqrt(target / max(mse, 1e-9)))
    out = np.clip(np.rint(rgb + amp * shape[..., None]), 0, 255)
    if float(((out - rgb)[area] ** 2).mean()) > target * 1.02:  # overshot: back to the last safe step
        out = np.clip(np.rint(rgb + amp / 1.05 * shape[..., None]), 0, 255)
    marked = Image.fromarray(out.astype(np.uint8), "RGB")
    if "A" in image.getbands():  # a transparent background stays transparent
        marked.putalpha(image.getchannel("A"))
    return marked


def _tiled(tile: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    return np.tile(tile, (math.ceil(h / tile.shape[0]), math.ceil(w / tile.shape[1])))[:h, :w]


def _resize(a: np.ndarray, size: tuple[int, int], resample: Image.Resampling = Image.Resampling.BICUBIC) -> np.ndarray:
    return np.asarray(Image.fromarray(a.astype(np.float32), "F").resize(size, resample), dtype=np.float64)


# -- detection ---------------------------------------------------------------------------------------


def headroom(rgb: np.ndarray) -> np.ndarray:
    """How much of the mark a pixel should carry so that it survives a mild brightening (H×W in
    [0.3, 1]): the luminance share of its channels below ``CLIP_AT`` (fading over the 17 levels
    under it). A white backdrop brightened by 10 % clips to 255 and takes any mark with it, so most
    of the energy goes to the drawing; a floor of 0.3 keeps some on the backdrop, which JPEG needs
    and which keeps the drawing's share from growing visible (floors 0.15 / 0.3 / 0.6 / 1 kept
    198 / 198 / 197 / 195 of 200 marks through the brightening: docs/provenance.md)."""
    share = np.clip((CLIP_AT - rgb) / 17.0, 0.0, 1.0) @ LUMA  # (H, W)
    return ndimage.minimum_filter(np.maximum(share, 0.3), 3)


def luminance(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64) @ LUMA  # (H, W)


def whiten(y: np.ndarray) -> np.ndarray:
    """Remove the picture, keep the mark: a high-pass (the image minus its Gaussian blur), clipped
    so that what is left of edges stays bounded, then divided by its local RMS so that textured
    areas (where the high-pass is mostly picture) count for less than flat ones."""
    r = np.clip(y - ndimage.gaussian_filter(y, 2.0), -12.0, 12.0)
    return r / np.sqrt(ndimage.gaussian_filter(r * r, 4.0) + 4.0)


def weights(y: np.ndarray) -> np.ndarray:
    """How much each pixel is worth to the detector: little within a few pixels of a strong edge
    (there the high-pass is the edge, not the mark), about 1 elsewhere."""
    smooth = ndimage.gaussian_filter(y, 1.0)
    g = np.hypot(ndimage.sobel(smooth, 0), ndimage.sobel(smooth, 1)) / 8  # levels per pixel
    return ndimage.minimum_filter(1.0 / (1.0 + (g / EDGE) ** 2), 5)


def periods(r: np.ndarray, count: int = 4) -> list[float]:
    """The strongest periods (pixels) in the whitened image's autocorrelation along its axes."""
    h, w = r.shape
    f = np.fft.rfft2(r - r.mean(), s=(2 * h, 2 * w))
    acf = np.fft.irfft2(np.abs(f) ** 2, s=(2 * h, 2 * w))
    n = min(h, w) // 2
    prof = acf[0, :n] + acf[:n, 0]  # (n,)
    prof = prof - ndimage.median_filter(prof, size=9, mode="nearest")
    lo = 12
    peaks = [i for i in range(lo, n - 1) if prof[i] > prof[i - 1] and prof[i] >= prof[i + 1] and prof[i] > 0]
    peaks.sort(key=lambda i: -prof[i])
    out = []
    for i in peaks[:count]:
        a, b, c = prof[i - 1], prof[i], prof[i + 1]
        denom = a - 2 * b + c
        out.append(i + (0.5 * (a - c) / denom if denom else 0.0))  # parabolic refinement
    return out


def _fold(r: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The weighted average of every TILE×TILE period of ``r`` on one tile."""
    h, wd = r.shape
    ph, pw = math.ceil(h / TILE) * TILE, math.ceil(wd / TILE) * TILE
    num, den = np.zeros((ph, pw)), np.zeros((ph, pw))
    num[:h, :wd], den[:h, :wd] = r * w, w
    blocks = (ph // TILE, TILE, pw // TILE, TILE)
    return num.reshape(blocks).sum((0, 2)) / np.maximum(den.reshape(blocks).sum((0, 2)), 1e-3)


def _at_scale(r: np.ndarray, wt: np.ndarray, scale: float) -> Detection:
    """Look for the mark in the whitened image ``r`` (pixel weights ``wt``) assuming its period
    there is ``scale`` × TILE pixels."""
    h, w = r.shape
    size = (max(TILE, round(w / scale)), max(TILE, round(h / scale)))
    # bicubic keeps more of the mark's finest cells than bilinear when a halved image is brought back up
    folded = _fold(_resize(r, size, Image.Resampling.BICUBIC), _resize(wt, size, Image.Resampling.BILINEAR))
    corr = np.real(np.fft.ifft2(np.fft.fft2(folded) * np.conj(np.fft.fft2(PILOT_TILE))))  # (T, T)
    sd = corr.std()
    dy, dx = np.unravel_index(int(corr.argmax()), corr.shape)
    z = float((corr[dy, dx] - corr.mean()) / sd) if sd > 0 else 0.0
    payload = None
    if z >= Z_THRESHOLD:
        aligned = np.roll(folded, (-dy, -dx), axis=(0, 1))
        cells = downsample(aligned)  # (G, G)
        cells = (cells - (cells * PILOT).mean() * PILOT) * SPREAD  # the pilot's share removed, then despread
        soft = np.zeros((INFO_BITS + K - 1) * len(POLYS))
        np.add.at(soft, ORDER.ravel(), cells.ravel())
        payload = check(viterbi(soft))
    return Detection(payload, z, float(scale), (int(dy), int(dx)))


def detect(image: Image.Image) -> Detection:
    """Find the mark in ``image``: at the untouched image's scale and at the periods its
    autocorrelation shows, then around the two strongest of those; the best decode wins (else
    the strongest pilot, for the report)."""
    if min(image.size) > DETECT_SIDE:  # a big upload costs what a 512-px one does (the period scales with it)
        f = min(image.size) / DETECT_SIDE
        image = image.convert("RGB").resize((round(image.width / f), round(image.height / f)), Image.Resampling.BOX)
    y = luminance(image)
    r, wt = whiten(y), weights(y)
    h, w = r.shape
    coarse = {float(unit(w, h))}
    for p in periods(r * wt):
        coarse.update(s for s in (p / TILE, p / (2 * TILE)) if MIN_SCALE <= s <= MAX_SCALE)
    tried = [_at_scale(r, wt, s) for s in sorted(coarse)]
    for d in sorted(tried, key=lambda d: -d.z)[:2]:
        tried += [_at_scale(r, wt, d.scale * (1 + k * 0.004)) for k in (-2, -1, 1, 2)]
    found = [d for d in tried if d.found]
    return max(found or tried, key=lambda d: d.z)


def psnr(a: Image.Image, b: Image.Image) -> float:
    """Peak signal-to-noise ratio (dB) of ``b`` against ``a``, over R, G and B."""
    x = np.asarray(a.convert("RGB"), dtype=np.float64)
    y = np.asarray(b.convert("RGB"), dtype=np.float64)
    mse = float(((x - y) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)
