"""``/arena``: blind battles, votes and the leaderboard (HTML pages and a JSON API)."""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from limner.arena.categories import CATEGORIES
from limner.engine.request import MAX_PROMPT_CHARS
from limner.errors import RateLimited
from limner.server.deps import client_address
from limner.server.errors import ERROR_RESPONSES
from limner.server.web.auth import user_from_request
from limner.server.web.pages import render_page as page
from limner.store import throttle

router = APIRouter(prefix="/arena", tags=["arena"], responses=ERROR_RESPONSES)
VOTER_COOKIE = "limner_voter"


def voter_id(request: Request, response: Response | None = None) -> str:
    """The signed-in account, else an anonymous id kept in a cookie."""
    with request.app.state.db.session() as s:
        user = user_from_request(s, request)
    if user is not None:
        return f"user:{user.id}"
    anon = request.cookies.get(VOTER_COOKIE) or getattr(request.state, "new_voter", None)
    if not anon or len(anon) > 64:
        anon = secrets.token_urlsafe(18)
        request.state.new_voter = anon
    if response is not None and request.cookies.get(VOTER_COOKIE) != anon:
        response.set_cookie(
            VOTER_COOKIE,
            anon,
            max_age=365 * 86400,
            httponly=True,
            secure=request.app.state.settings.cookie_secure,
            samesite="lax",
        )
    return f"anon:{anon}"


class BattleOut(BaseModel):
    id: str
    prompt: str
    token: str
    images: dict[str, str] = Field(description="Image URLs for sides a and b; nothing in them names a model.")


class BattleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        description="Generate live for this prompt (signed-in accounts only).",
    )


class VoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    battle_id: str = Field(max_length=64)
    token: str = Field(max_length=128)
    outcome: Literal["a", "b", "tie", "both_bad"]


class VoteOut(BaseModel):
    battle_id: str
    outcome: str
    models: dict[str, str]


class StandingOut(BaseModel):
    rank: int
    model: str
    rating: float
    lower: float
    upper: float
    votes: int
    wins: float
    elo: float


class BoardOut(BaseModel):
    category: str
    votes: int
    standings: list[StandingOut]


def _battle_out(view, voter: str) -> BattleOut:
    return BattleOut(
        id=view.id,
        prompt=view.prompt,
        token=view.token,
        images={side: f"/arena/battles/{view.id}/{side}.png?token={view.token}" for side in ("a", "b")},
    )


def admit_battle(request: Request) -> None:
    """Every battle is a row, and anyone may start one without an account (dropping the voter
    cookie makes a new voter): so battles are counted per client address, and past the hour's
    limit refused with 429 before anything is read or stored."""
    settings = request.app.state.settings
    limit = throttle.Limit("battles-address", settings.arena_battles_per_address, 3600)
    with request.app.state.db.session() as s:
        wait = throttle.take(s, limit, client_address(request))
    if wait is not None:
        raise RateLimited(
            f"{limit.attempts} battles were started from your address this hour; try again in {throttle.minutes(wait)}",
            retry_after=wait,
            code="battle_rate_limited",
        )


@router.post("/api/battles", response_model=BattleOut, summary="Start a battle (curated, or live with a prompt)")
async def new_battle(request: Request, response: Response, body: BattleIn | None = None) -> BattleOut:
    voter = voter_id(request, response)
    arena = request.app.state.arena
    await run_in_threadpool(admit_battle, request)
    view = await run_in_threadpool(arena.new_battle, voter, body.prompt if body else None)
    return _battle_out(view, voter)


@router.get("/battles/{battle_id}/{side}.png", summary="One side of a battle", response_class=FileResponse)
def battle_image(
    request: Request, battle_id: str, side: Literal["a", "b"], token: Annotated[str, Query(max_length=128)]
):
    path, model = request.app.state.arena.battle_image(battle_id, side, voter_id(request), token)
    headers = {"Cache-Control": "private, no-store"}
    if model is not None:  # the models are revealed: the image may now say which one made it (Content Credentials)
        return Response(request.app.state.provenance.sign(path.read_bytes(), "png", model), 200, headers, "image/png")
    return FileResponse(path, media_type="image/png", headers=headers)


@router.post("/api/votes", response_model=VoteOut, summary="Vote once on a battle; the models are revealed")
def vote(request: Request, response: Response, body: VoteIn) -> VoteOut:
    result = request.app.state.arena.vote(body.battle_id, voter_id(request, response), body.token, body.outcome)
    return VoteOut(**result)


@router.get("/api/leaderboard", response_model=BoardOut, summary="Bradley–Terry leaderboard with 95% intervals")
def board_json(request: Request, category: Annotated[str, Query(max_length=40)] = "overall") -> BoardOut:
    standings = request.app.state.arena.board(category)
    return BoardOut(
        category=category,
        votes=sum(s.votes for s in standings) // 2,  # each vote counts for both its models
        standings=[
            StandingOut(
                rank=s.rank,
                model=s.model,
                rating=round(float(s.rating), 1),
                lower=round(float(s.lower), 1),
                upper=round(float(s.upper), 1),
                votes=s.votes,
                wins=s.wins,
                elo=round(float(s.elo), 1),
            )
            for s in standings
        ],
    )


@router.get("", response_class=HTMLResponse, include_in_schema=False)
def arena_page(request: Request) -> HTMLResponse:
    response = page(request, "arena.html")  # the signed-in header when there is an account
    voter_id(request, response)
    return response


@router.get("/leaderboard", response_class=HTMLResponse, include_in_schema=False)
def board_page(request: Request, category: Annotated[str, Query(max_length=40)] = "overall") -> HTMLResponse:
    board = board_json(request, category)
    lo = min([s.lower for s in board.standings] + [900.0])
    hi = max([s.upper for s in board.standings] + [1100.0])
    return page(request, "leaderboard.html", board=board, categories=CATEGORIES, lo=lo - 20, hi=hi + 20)
