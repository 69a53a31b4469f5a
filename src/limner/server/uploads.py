"""Uploaded images, decoded only when they are safe to decode: one of the documented formats, and
no more pixels than the server allows — checked from the header, before a pixel is decompressed.
A 69-byte PNG may declare 30000×30000; a 236 KB one may inflate to 900 MB."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from limner.errors import InvalidRequest

FORMATS = ("PNG", "JPEG", "WEBP")


def read_image(data: bytes, *, param: str, max_pixels: int) -> Image.Image:
    """Decode ``data`` (PNG, JPEG or WebP, at most ``max_pixels``), or raise a 400 naming ``param``."""
    too_large = InvalidRequest(
        f"'{param}' has more than the {max_pixels:,} pixels an upload may have", code="image_too_large", param=param
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=FORMATS)  # reads the header only
            if img.width * img.height > max_pixels:
                raise too_large
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # Pillow's own, far higher, limit
        raise too_large from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise InvalidRequest(f"'{param}' is not a PNG, JPEG or WebP image", code="invalid_image", param=param) from None
    return img
