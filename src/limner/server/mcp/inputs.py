"""An edit's input image as an MCP tool argument: a link this server handed out, a local file
(stdio only) or base64, within the upload limit."""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from pathlib import Path

from limner.errors import Forbidden, InvalidRequest, NotFound, TooLarge
from limner.server.mcp.door import Door
from limner.store.db import StoredFile

_FILE_LINK = re.compile(r"/v1/files/(file-[0-9a-f]{32})/content$")


def image_bytes(door: Door, value: str, param: str) -> bytes:
    """An input image given as a link this server handed out, a local file (stdio only), or base64
    (a data: URL too), within the upload limit."""
    value = value.strip()
    limit = door.settings.max_upload_bytes
    too_large = TooLarge(
        f"'{param}' is larger than the upload limit of {limit:,} bytes", code="file_too_large", param=param
    )
    if value.startswith(("http://", "https://")):
        return _linked_file(door, value, param)
    if door.outputs is not None and len(value) < 4096 and not value.startswith("data:"):
        path = Path(urllib.parse.unquote(value[7:]) if value.startswith("file://") else value).expanduser()
        try:
            size = path.stat().st_size if path.is_file() else None
        except OSError:  # not a name a path can have (base64 is read below)
            size = None
        if size is not None:
            if size > limit:
                raise too_large
            return path.read_bytes()
    encoded = value.partition(",")[2] if value.startswith("data:") else value
    try:
        data = base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if not data:
        where = "a local file, " if door.outputs is not None else ""
        raise InvalidRequest(
            f"'{param}' must be the link of an image this server made, {where}or base64 image data",
            code="invalid_image",
            param=param,
        )
    if len(data) > limit:
        raise too_large
    return data


def _linked_file(door: Door, url: str, param: str) -> bytes:
    """The stored file behind a signed link of this server's (``/v1/files/{id}/content``); nothing
    else is fetched."""
    parts = urllib.parse.urlsplit(url)
    found = _FILE_LINK.search(parts.path)
    query = urllib.parse.parse_qs(parts.query)
    expires, signature = query.get("expires", [""])[0], query.get("signature", [""])[0]
    if door.files is None or not found or not expires.isdigit() or not signature:
        raise InvalidRequest(
            f"'{param}' is a link, but not to an image this server made: give such a link, or the image in base64",
            code="invalid_image",
            param=param,
        )
    file_id = found.group(1)
    if not door.files.check(file_id, int(expires), signature):
        raise Forbidden("This link has expired or its signature is wrong.", code="invalid_signature", param=param)
    with door.db.session() as s:
        row = s.get(StoredFile, file_id)
        path = Path(row.path) if row is not None else None
    if path is None or not path.exists():
        raise NotFound(f"No file with id '{file_id}'.", code="file_not_found", param=param)
    return path.read_bytes()
