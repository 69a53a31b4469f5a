"""``/v1/files/{id}/content``: stored images, for the key that made them or a valid signed link."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from limner.errors import Forbidden, NotFound, Unauthorized
from limner.server.deps import DbSession, FilesDep, presented_key
from limner.server.errors import ERROR_RESPONSES
from limner.store.db import StoredFile
from limner.store.keys import find_key

router = APIRouter(prefix="/v1/files", tags=["files"], responses=ERROR_RESPONSES)


@router.get(
    "/{file_id}/content",
    summary="Download a generated image",
    responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}}},
    response_class=FileResponse,
)
def file_content(
    file_id: str,
    request: Request,
    session: DbSession,
    files: FilesDep,
    expires: int | None = Query(None, ge=0, le=2**62),
    signature: str | None = Query(None, max_length=128),
):
    row = session.get(StoredFile, file_id)
    if row is None or row.key_id is None:
        raise NotFound(f"No file with id '{file_id}'.", code="file_not_found", param="file_id")
    allowed = False
    if expires is not None and signature is not None:
        if not files.check(file_id, expires, signature):
            raise Forbidden("This link has expired or its signature is wrong.", code="invalid_signature")
        allowed = True
    else:
        key = presented_key(request)
        owner = find_key(session, key) if key else None
        if owner is None:
            raise Unauthorized(
                "Send the API key that created this file, or use its signed link.", code="missing_api_key"
            )
        if owner.id != row.key_id:
            raise NotFound(f"No file with id '{file_id}'.", code="file_not_found", param="file_id")
        allowed = True
    if not allowed or not Path(row.path).exists():
        raise NotFound(f"No file with id '{file_id}'.", code="file_not_found", param="file_id")
    return FileResponse(row.path, media_type=row.mime, headers={"Cache-Control": "private, max-age=3600"})
