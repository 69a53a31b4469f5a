"""Change one pixel of a signed image and keep its manifest where it was: the image data is
re-encoded, the C2PA boxes are spliced back (imported by name by the tests that need it)."""

from __future__ import annotations

import io
import struct

from PIL import Image


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    i, out = 8, []
    while i < len(data):
        (n,) = struct.unpack(">I", data[i : i + 4])
        out.append((data[i + 4 : i + 8], data[i : i + 12 + n]))
        i += 12 + n
    return out


def _jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    i, out = 2, []
    while i < len(data):
        marker = data[i + 1]
        if marker == 0xDA:  # start of scan: the rest is image data
            out.append((marker, data[i:]))
            break
        (n,) = struct.unpack(">H", data[i + 2 : i + 4])
        out.append((marker, data[i : i + 2 + n]))
        i += 2 + n
    return out


def _riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    i, out = 12, []
    while i < len(data):
        (n,) = struct.unpack("<I", data[i + 4 : i + 8])
        out.append((data[i : i + 4], data[i : i + 8 + n + (n & 1)]))
        i += 8 + n + (n & 1)
    return out


def change_one_pixel(data: bytes, fmt: str) -> bytes:
    """``data`` with pixel (3, 3) changed in its image data, every other box kept in place."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    r, g, b = image.getpixel((3, 3))  # type: ignore[misc]
    image.putpixel((3, 3), (r ^ 0x40, g, b))
    buf = io.BytesIO()
    image.save(buf, format=fmt.upper(), quality=95)
    fresh = buf.getvalue()
    if fmt == "png":
        idat = b"".join(c for t, c in _png_chunks(fresh) if t == b"IDAT")
        out, placed = [], False
        for t, c in _png_chunks(data):
            if t != b"IDAT":
                out.append(c)
            elif not placed:
                out.append(idat)
                placed = True
        return data[:8] + b"".join(out)
    if fmt == "jpeg":
        kept = b"".join(c for m, c in _jpeg_segments(data) if m == 0xEB)  # APP11: the manifest
        segments = _jpeg_segments(fresh)
        return b"\xff\xd8" + segments[0][1] + kept + b"".join(c for _, c in segments[1:])
    vp8 = next(c for t, c in _riff_chunks(fresh) if t in (b"VP8 ", b"VP8L"))
    body = b"".join(vp8 if t in (b"VP8 ", b"VP8L") else c for t, c in _riff_chunks(data))
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body
