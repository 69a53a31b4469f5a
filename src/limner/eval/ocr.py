"""Read text in images with Tesseract 5 (Debian packages ``tesseract-ocr`` and ``tesseract-ocr-eng``)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

from limner.errors import LimnerError


class OCRUnavailable(LimnerError):
    pass


def tesseract_version() -> str:
    exe = shutil.which("tesseract")
    if exe is None:
        raise OCRUnavailable("tesseract is not installed: apt-get install tesseract-ocr tesseract-ocr-eng")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).splitlines()[0]


def read_texts(image: Image.Image, upscale: int = 2) -> list[str]:
    """What Tesseract reads in the image and in its negative (for light-on-dark lettering), as
    sparse text (page segmentation mode 11), upscaled for small lettering: one string per variant."""
    exe = shutil.which("tesseract")
    if exe is None:
        raise OCRUnavailable("tesseract is not installed: apt-get install tesseract-ocr tesseract-ocr-eng")
    grey = image.convert("L")
    if upscale > 1:
        grey = grey.resize((grey.width * upscale, grey.height * upscale), Image.Resampling.LANCZOS)
    texts = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, variant in enumerate((grey, ImageOps.invert(grey))):
            path = Path(tmp) / f"{i}.png"
            variant.save(path)
            proc = subprocess.run(
                [exe, str(path), "-", "--psm", "11", "-l", "eng"],
                capture_output=True,
                text=True,
                timeout=60,
                env={"OMP_THREAD_LIMIT": "1", "PATH": "/usr/bin:/bin"},
            )
            texts.append(proc.stdout)
    return texts
