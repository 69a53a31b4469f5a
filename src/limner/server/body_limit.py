"""Request bodies are counted as they arrive — with a Content-Length or chunked — and refused
with 413 past their route's limit, before a handler, a form parser or a password hash sees more.

Uploads (an image and a mask) may be large; everything else is a JSON body or a small form. The
counting itself is Starlette's (``RequestBodyLimitResponder``): it raises an HTTP 413 inside the
app as soon as the running total passes the limit, which the error handlers turn into the
OpenAI envelope."""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.middleware.body_limit import RequestBodyLimitResponder
from starlette.types import ASGIApp, Receive, Scope, Send

from limner.server import errors
from limner.server.settings import Settings

UPLOAD_PATHS = re.compile(r"^/v1/images/(edits|variations|verify)$|^/images/[^/]+/edit$")
MCP_PATH = "/mcp"


def body_limit(settings: Settings, path: str) -> int:
    """The most bytes a request to ``path`` may send."""
    if UPLOAD_PATHS.match(path):
        return 2 * settings.max_upload_bytes + 2**20  # an image, a mask and the form's fields
    if path == MCP_PATH:  # edit_image: an image and a mask in base64 (4 characters per 3 bytes), in JSON
        return 2 * 4 * -(-settings.max_upload_bytes // 3) + 2**20
    return settings.max_request_bytes


def too_large(limit: int) -> str:
    return f"Request body is larger than this route's limit of {limit:,} bytes."


class BodyLimit:
    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(self.settings, scope["path"])
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            response = errors.envelope(413, too_large(limit), code="request_too_large")
            await response(scope, receive, send)
            return
        await RequestBodyLimitResponder(self.app, limit)(scope, receive, send)
