"""What an image says about where it came from: its C2PA manifest (present, valid, tampered, its
claims) and Limner's watermark (found, with what confidence), and — only when the caller passes a
``resolve`` — what the watermark stands for in this server's database."""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image

from limner.provenance import credentials, watermark

FORMATS = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}


def verify(
    data: bytes,
    image: Image.Image,
    *,
    trusted_roots: bytes | None = None,
    resolve: Callable[[int], dict | None] | None = None,
) -> dict:
    """The report for one image file: ``data`` as it came, ``image`` decoded from it (by the
    caller, who bounds what it decodes: ``server.uploads.read_image``)."""
    fmt = FORMATS.get(image.format or "", "png")
    manifest = credentials.read(data, fmt, trusted_roots)
    found = watermark.detect(image)
    mark: dict = {
        "found": found.found,
        "confidence": round(1.0 - found.false_alarm, 9) if found.found else 0.0,
        "pilot_z": round(found.z, 2),
    }
    if found.found and resolve is not None and found.payload is not None:
        mark["resolves_to"] = resolve(found.payload)
    return {
        "format": fmt,
        "width": image.width,
        "height": image.height,
        "manifest": manifest.to_dict(),
        "watermark": mark,
    }
