"""An account's history: its images, newest first, searchable by prompt."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from limner.server.web.auth import CurrentUser
from limner.server.web.pages import render_page
from limner.store.db import Creation

router = APIRouter(tags=["image creator"], include_in_schema=False)
PER_PAGE = 24


@router.get("/history", response_class=HTMLResponse)
def history(
    request: Request,
    user: CurrentUser,
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> HTMLResponse:
    cond = [Creation.user_id == user.id]
    if q.strip():
        pattern = "%" + q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        cond.append(Creation.prompt.ilike(pattern, escape="\\"))
    with request.app.state.db.session() as s:
        total = s.scalar(select(func.count(Creation.id)).where(*cond)) or 0
        items = list(
            s.scalars(
                select(Creation)
                .where(*cond)
                .order_by(Creation.created.desc(), Creation.id)
                .offset((page - 1) * PER_PAGE)
                .limit(PER_PAGE)
            )
        )
    pages = max(1, math.ceil(total / PER_PAGE))
    return render_page(request, "history.html", items=items, q=q, page=page, pages=pages, total=total)
