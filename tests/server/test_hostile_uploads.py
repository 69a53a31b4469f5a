"""Hostile input: decompression bombs and odd formats in uploads (hardening item 4), and loosely
typed JSON (item 10). Decoders see only bounded input, and only for admitted requests."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from api_helpers import SIZE, error_of, png_bytes
from PIL import Image

from limner.server import multipart

pytestmark = pytest.mark.hostile
EDITS = "/v1/images/edits"


def png_header(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG that declares ``width``×``height`` (one row of data, then ends)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


@pytest.fixture
def decodes(monkeypatch) -> list[str]:
    """The fields the server decoded, in order."""
    seen: list[str] = []
    real = multipart.read_image

    def counting(data: bytes, *, param: str, max_pixels: int):
        seen.append(param)
        return real(data, param=param, max_pixels=max_pixels)

    monkeypatch.setattr(multipart, "read_image", counting)
    return seen


def _edit(client, auth, files, **fields):
    return client.post(EDITS, headers=auth, data={"prompt": "a cat", "num_inference_steps": "1", **fields}, files=files)


def test_a_header_declaring_a_huge_image_is_refused_before_decoding(client, auth):
    bomb = png_header(30000, 30000)
    assert len(bomb) < 100
    r = _edit(client, auth, {"image": ("bomb.png", bomb, "image/png")})
    assert r.status_code == 400 and error_of(r)["code"] == "image_too_large" and error_of(r)["param"] == "image"


def test_a_bomb_as_mask_is_refused_too(client, auth):
    image = png_bytes(Image.new("RGB", (128, 128)))
    r = _edit(
        client, auth, {"image": ("a.png", image, "image/png"), "mask": ("m.png", png_header(9000, 9000), "image/png")}
    )
    assert r.status_code == 400 and error_of(r)["param"] == "mask"


def test_several_images_are_counted_before_any_is_decoded(client, auth, decodes):
    files = [("image[]", (f"{i}.png", png_header(9000, 9000), "image/png")) for i in range(4)]
    r = _edit(client, auth, files)
    assert r.status_code == 400 and "one image" in error_of(r)["message"]
    assert decodes == []


def test_a_key_with_no_quota_left_costs_no_decoding(client, make_key, decodes):
    key = make_key(images_per_day=0)
    r = _edit(
        client,
        {"Authorization": f"Bearer {key}"},
        {"image": ("a.png", png_bytes(Image.new("RGB", (128, 128))), "image/png")},
    )
    assert r.status_code == 429
    assert decodes == []


def test_a_refused_prompt_costs_no_decoding(client, auth, decodes):
    r = _edit(client, auth, {"image": ("a.png", png_bytes(Image.new("RGB", (128, 128))), "image/png")}, prompt="gore")
    assert r.status_code == 400 and error_of(r)["code"] == "moderation_blocked"
    assert decodes == []


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "ICO", "PPM"])
def test_only_the_documented_formats_are_decoded(client, auth, fmt):
    buf = io.BytesIO()
    Image.new("RGB", (128, 128), "red").save(buf, format=fmt)
    r = _edit(client, auth, {"image": (f"a.{fmt.lower()}", buf.getvalue(), "application/octet-stream")})
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_image"


def test_a_valid_edit_still_works(client, auth, decodes):
    r = _edit(client, auth, {"image": ("a.png", png_bytes(Image.new("RGB", (128, 128))), "image/png")}, size=SIZE)
    assert r.status_code == 200, r.text
    assert decodes == ["image"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("n", "2"), ("n", True), ("n", 1.5), ("seed", "7"), ("stream", "true"), ("partial_images", False), ("prompt", 5)],
)
def test_json_types_are_strict(client, auth, field, value):
    body = {"prompt": "a red apple", "size": SIZE, field: value}
    r = client.post("/v1/images/generations", headers=auth, json=body)
    assert r.status_code == 400
    err = error_of(r)
    assert err["param"] == field and err["code"] == "invalid_value"


@pytest.mark.parametrize("body", [b"[]", b'"a prompt"', b"42", b"null"])
def test_a_body_that_is_not_an_object_is_named_as_such(client, auth, body):
    r = client.post("/v1/images/generations", headers={**auth, "Content-Type": "application/json"}, content=body)
    assert r.status_code == 400
    err = error_of(r)
    assert err["param"] is None and "'None'" not in err["message"] and "JSON object" in err["message"]


def test_invalid_utf8_has_a_code(client, auth):
    r = client.post(
        "/v1/images/generations",
        headers={**auth, "Content-Type": "application/json"},
        content=b'{"prompt": "\xff\xfe"}',
    )
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_json"
