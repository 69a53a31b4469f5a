"""Read text in images with Tesseract 5 (Debian packages ``tesseract-ocr`` and ``tesseract-ocr-eng``)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from limner.errors import LimnerError


class OCRUnavailable(LimnerError):
    pass


def tesseract_version() -> str:
    exe = shutil.which("tesseract")
    if exe is None:
        raise OCRUnavailable("tesseract is not installed: apt-get install tesseract-ocr tesseract-ocr-eng")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).splitlines()[0]


# Readings, in order: (scale, image variant, Tesseract page segmentation mode, thresholding
# method). "localK-T" keeps the pixels that differ by more than T grey levels from a K-pixel
# median of their surroundings: lettering on coloured boards and boxes, which Tesseract's own
# binarisation often loses; those variants also drop strokes far larger than a letter (rings,
# frames). Tesseract reads best at a certain letter size, so the later readings look at the image
# at its own size (big titles, script) and at three times it (small labels).
# Chosen on the exact layouts of the 224 typography prompts and the corpus's real typography
# renders (no generated image); with bench/ocr_layouts.py the best reading finds 98.6 % of the
# layouts' words.
READINGS = [
    (2, "local61-60", 11, 0),
    (2, "local41-60", 11, 0),
    (2, "local61-60", 6, 0),
    (2, "grey", 6, 0),
    (2, "negative", 6, 0),
    (2, "local21-30", 11, 0),
    (2, "grey", 6, 1),
    (2, "negative", 6, 1),
    (1, "local41-60", 11, 0),
    (3, "negative", 6, 1),
    (1, "negative", 6, 1),
    (1, "local21-30", 11, 0),
]


def _variant(name: str, grey: Image.Image) -> Image.Image:
    if name == "grey":
        return grey
    if name == "negative":
        return ImageOps.invert(grey)
    k, t = (int(v) for v in name.removeprefix("local").split("-"))
    g = np.asarray(grey, dtype=np.int16)
    # the median of a k-pixel neighbourhood, computed at half the size (a full-size median
    # filter this wide takes seconds per image)
    small = grey.resize((max(1, grey.width // 2), max(1, grey.height // 2)), Image.Resampling.BOX)
    smooth = small.filter(ImageFilter.MedianFilter((k // 2) | 1)).resize(grey.size, Image.Resampling.BILINEAR)
    background = np.asarray(smooth, dtype=np.int16)
    return Image.fromarray(np.where(_without_frames(np.abs(g - background) > t), 0, 255).astype(np.uint8))


def _without_frames(ink: np.ndarray) -> np.ndarray:
    """Drop the connected strokes far larger than any letter (badge rings, box outlines, long
    arrows): Tesseract takes a ring around a word for part of it and then reads nothing."""
    from scipy import ndimage

    labels, n = ndimage.label(ink)
    if n == 0:
        return ink
    h, w = ink.shape
    drop = np.zeros(n + 1, dtype=bool)
    for i, sl in enumerate(ndimage.find_objects(labels), 1):
        if sl is not None and (sl[0].stop - sl[0].start > 0.45 * h or sl[1].stop - sl[1].start > 0.6 * w):
            drop[i] = True
    return ink & ~drop[labels]


def read_texts(image: Image.Image, targets: list[str] | None = None, readings: int | None = None) -> list[str]:
    """Tesseract's readings of the image under each of ``READINGS`` (or the first ``readings`` of
    them): one string per reading. With ``targets`` it stops at the first reading that finds all
    of them (the best reading cannot get better)."""
    from limner.eval.metrics import word_accuracy

    exe = shutil.which("tesseract")
    if exe is None:
        raise OCRUnavailable("tesseract is not installed: apt-get install tesseract-ocr tesseract-ocr-eng")
    grey = image.convert("L")
    scaled = {1: grey}  # each scale resized once, each variant of it made once
    texts: list[str] = []
    made: dict[tuple[int, str], Path] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for scale, name, psm, method in READINGS[:readings]:
            if scale not in scaled:
                scaled[scale] = grey.resize((grey.width * scale, grey.height * scale), Image.Resampling.LANCZOS)
            if (scale, name) not in made:
                made[scale, name] = Path(tmp) / f"{name}-{scale}.png"
                _variant(name, scaled[scale]).save(made[scale, name])
            args = ["--psm", str(psm), "-c", f"thresholding_method={method}", "-l", "eng"]
            proc = subprocess.run(
                [exe, str(made[scale, name]), "-", *args],
                capture_output=True,
                text=True,
                timeout=60,
                env={"OMP_THREAD_LIMIT": "1", "PATH": "/usr/bin:/bin"},
            )
            texts.append(proc.stdout)
            if targets and word_accuracy(targets, proc.stdout) == 1.0:
                break
    return texts
