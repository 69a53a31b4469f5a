"""Server-sent events: one event as text, and how OpenAPI 3.1 describes a stream of them."""

from __future__ import annotations

import base64
import json

from PIL import Image

from limner.engine.metadata import plain_png


def event(type_: str, **data: object) -> str:
    """One event whose name is ``type_`` and whose data is JSON carrying ``type`` too (OpenAI's
    shape for image streams)."""
    return f"event: {type_}\ndata: {json.dumps({'type': type_, **data})}\n\n"


def data(payload: dict) -> str:
    """One unnamed event (the Image Creator's job updates)."""
    return f"data: {json.dumps(payload)}\n\n"


def png_b64(img: Image.Image) -> str:
    return base64.b64encode(plain_png(img)).decode()


def stream_doc(prefix: str) -> dict:
    """The 200 response: JSON, or (``stream``) server-sent events, each described as OpenAPI 3.1
    describes one event of a stream: its name and its JSON data."""
    one = {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"type": "string", "enum": [f"{prefix}.partial_image", f"{prefix}.completed", "error"]},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {
                        "type": {"type": "string"},
                        "b64_json": {"type": "string"},
                        "partial_image_index": {"type": "integer"},
                        "created_at": {"type": "integer"},
                        "size": {"type": "string"},
                        "output_format": {"type": "string"},
                        "usage": {"$ref": "#/components/schemas/UsageInfo"},
                        "error": {"$ref": "#/components/schemas/ErrorDetail"},
                    },
                },
            },
        },
    }
    return {
        "content": {"text/event-stream": {"schema": one}},
        "description": "JSON, or server-sent events when stream is true.",
    }
