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


def edit_mask(image: Image.Image, mask: Image.Image) -> Image.Image:
    """The mask of an edit as RGBA, or a 400: it must have the image's size and an alpha channel,
    whose transparent pixels mark the area to repaint."""
    if mask.size != image.size:
        raise InvalidRequest(
            f"mask is {mask.size[0]}x{mask.size[1]} but image is {image.size[0]}x{image.size[1]}; they must match",
            code="invalid_mask",
            param="mask",
        )
    if mask.mode not in ("RGBA", "LA", "PA") and "transparency" not in mask.info:
        raise InvalidRequest(
            "mask must have an alpha channel: its transparent pixels mark the area to edit",
            code="invalid_mask",
            param="mask",
        )
    return mask.convert("RGBA")
