"""One image of an account: its page (with the prompt, seed and parameters that made it), its
file, and deleting it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy import delete

from limner.provenance.verify import verify
from limner.server.uploads import read_image
from limner.server.web.auth import CurrentUser, check_csrf
from limner.server.web.pages import redirect, render_page
from limner.store.db import Creation, StoredFile

router = APIRouter(tags=["image creator"], include_in_schema=False)


def owned_creation(request: Request, user_id: int, creation_id: str) -> Creation | None:
    """The creation if it is this account's (another account's looks like a missing one)."""
    with request.app.state.db.session() as s:
        c = s.get(Creation, creation_id)
        return c if c is not None and c.user_id == user_id else None


@router.get("/images/{creation_id}", response_class=HTMLResponse)
def image_page(request: Request, creation_id: str, user: CurrentUser) -> Response:
    c = owned_creation(request, user.id, creation_id)
    if c is None:
        return render_page(request, "notfound.html", 404)
    return render_page(
        request,
        "image.html",
        c=c,
        params_json=json.dumps(c.params, indent=1, sort_keys=True),
        credentials=_credentials(request, c),
    )


def _credentials(request: Request, c: Creation) -> dict | None:
    """The "Content credentials" panel: the stored file as ``limner verify`` reads it (what its
    watermark resolves to is the operator's, not shown here)."""
    with request.app.state.db.session() as s:
        f = s.get(StoredFile, c.file_id)
    if f is None or not Path(f.path).exists():
        return None
    data = Path(f.path).read_bytes()
    image = read_image(data, param="image", max_pixels=request.app.state.settings.max_upload_pixels)
    return verify(data, image, trusted_roots=request.app.state.provenance.trusted_roots())


@router.get("/images/{creation_id}/file")
def image_file(request: Request, creation_id: str, user: CurrentUser, download: bool = False) -> Response:
    c = owned_creation(request, user.id, creation_id)
    if c is None:
        return Response("not found", status_code=404)
    with request.app.state.db.session() as s:
        f = s.get(StoredFile, c.file_id)
    if f is None or not Path(f.path).exists():
        return Response("not found", status_code=404)
    headers = {"Cache-Control": "private, max-age=86400"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="limner-{c.seed}.png"'
    return FileResponse(f.path, media_type=f.mime, headers=headers)


@router.post("/images/{creation_id}/delete")
def image_delete(
    request: Request, creation_id: str, user: CurrentUser, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, csrf_token)
    c = owned_creation(request, user.id, creation_id)
    if c is None:
        return render_page(request, "notfound.html", 404)
    with request.app.state.db.session() as s:
        f = s.get(StoredFile, c.file_id)
        s.execute(delete(Creation).where(Creation.id == c.id))
        if f is not None:
            Path(f.path).unlink(missing_ok=True)
            s.delete(f)
    return redirect("/history")
