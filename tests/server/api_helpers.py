"""Helpers for the server tests (imported by name: pytest puts this folder on ``sys.path``)."""

from __future__ import annotations

import base64
import io

import openai
from fastapi.testclient import TestClient
from PIL import Image

# The tiny denoiser works at 32 px and its upsampler makes 128 px: the only two sizes it can do.
SIZE = "128x128"
STEPS = 4  # sampling steps for most requests: enough to exercise the loop, fast on CPU


def openai_client(tc: TestClient, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=str(tc.base_url) + "/v1", http_client=tc, max_retries=0)


def decode(b64: str) -> Image.Image:
    img = Image.open(io.BytesIO(base64.b64decode(b64)))
    img.load()
    return img


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def error_of(response) -> dict:
    """The OpenAI error envelope's inner object, after checking the envelope's shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"message", "type", "param", "code"} <= set(body["error"]), body
    return body["error"]
