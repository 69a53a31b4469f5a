"""Making images in the Image Creator: from a prompt (with a style), as variations of an image,
or by painting over part of one. Each press is moderated and validated first (a refusal costs
nothing), then queued as a job (``server.runner``) on the same engine as the API."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from PIL import Image
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from limner.engine import GenerationRequest
from limner.engine.engine import check_request
from limner.engine.request import MAX_PROMPT_CHARS, MAX_SEED, MAX_STEPS
from limner.errors import Busy, InvalidRequest, LimnerError, ModerationBlocked, RateLimited
from limner.model.sampling import SAMPLERS
from limner.server.uploads import read_image
from limner.server.web.auth import CurrentUser, check_csrf
from limner.server.web.images import owned_creation
from limner.server.web.pages import redirect, render_page
from limner.store.db import Creation, Job, StoredFile

router = APIRouter(tags=["image creator"], include_in_schema=False)
STYLES = {
    "": "No style",
    "3D render": "3D render",
    "flat icon": "Flat icon",
    "cartoon emoji": "Cartoon emoji",
    "clip art": "Clip art",
    "black and white line icon": "Line art",
}
IMAGES_PER_CREATE = 4
MAX_MASK_PIXELS = 4096 * 4096
ADVANCED = ("negative_prompt", "seed", "n", "steps", "guidance", "sampler")  # the panel opens when one is set


def _models(request: Request) -> list[dict]:
    out = []
    for m in request.app.state.engine.models():
        try:
            info = request.app.state.engine.backend(m["name"]).info()
            out.append({"name": m["name"], "sizes": info.sizes, "default": m["default"]})
        except LimnerError:
            continue
    return out


def _recent(request: Request, user_id: int, n: int = 8) -> list[Creation]:
    with request.app.state.db.session() as s:
        return list(
            s.scalars(select(Creation).where(Creation.user_id == user_id).order_by(Creation.created.desc()).limit(n))
        )


def _form_page(request: Request, user, status: int = 200, values: dict | None = None, **ctx: object) -> HTMLResponse:
    """The Create page, its form filled with ``values`` (what was typed, or a job's settings)."""
    values = values or {}
    return render_page(
        request,
        "create.html",
        status,
        values=values,
        advanced_open=any(values.get(k) for k in ADVANCED),
        models=_models(request),
        styles=STYLES,
        samplers=SAMPLERS,
        max_images=IMAGES_PER_CREATE,
        recent=_recent(request, user.id),
        **ctx,
    )


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: CurrentUser, again: str = "") -> HTMLResponse:
    """The Create page; ``?again=JOB`` fills the form with that job's settings and its seed, so
    pressing Create makes the same images again (or, with the seed cleared, new ones like them)."""
    values: dict = {}
    if again:
        with request.app.state.db.session() as s:
            job = s.get(Job, again)
        if job is not None and job.user_id == user.id and job.kind == "create":
            values = {k: str(v) for k, v in job.settings.items() if v not in (None, "")}
            values["seed"] = str(job.request.get("seed", ""))
    return _form_page(request, user, values=values)


def _start(
    request: Request, user, kind: str, req: GenerationRequest, settings: dict, source: str | None = None
) -> Response:
    """Moderate and validate first (a refusal costs nothing), then queue the job: it spends a
    boost if one is left, and counts against the day's allowance and the jobs in flight."""
    app = request.app
    try:
        app.state.policy.check_input(req.prompt)
        check_request(app.state.engine, req)
        job_id = app.state.jobs.submit(user.id, kind, req, source, settings)
    except ModerationBlocked as e:
        return _form_page(request, user, 400, values=settings, blocked=e.message)
    except (InvalidRequest, RateLimited, Busy) as e:
        response = _form_page(
            request, user, 400 if isinstance(e, InvalidRequest) else e.status, values=settings, error=e.message
        )
        if isinstance(e, RateLimited | Busy):
            response.headers["Retry-After"] = str(e.retry_after)
        return response
    return redirect(f"/jobs/{job_id}")


def _number(form: dict, name: str, kind: type, lo: float, hi: float, what: str) -> int | float | None:
    """A field of the Advanced panel: blank is None (the model's default), else a number in range."""
    text = form.get(name, "").strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not lo <= value <= hi:
        span = f"a whole number from {int(lo)} to {int(hi)}" if kind is int else f"a number from {lo:g} to {hi:g}"
        raise InvalidRequest(f"{what} must be {span}.", param=name)
    return value


def _advanced(form: dict) -> dict:
    """The Advanced panel's fields as GenerationRequest arguments; InvalidRequest names a bad one."""
    sampler = form.get("sampler", "")
    if sampler and sampler not in SAMPLERS:
        raise InvalidRequest(f"Unknown sampler; choose one of {', '.join(SAMPLERS)}.", param="sampler")
    n = _number(form, "n", int, 1, IMAGES_PER_CREATE, "Number of images")
    return {
        "negative_prompt": form.get("negative_prompt", "").strip(),
        "seed": _number(form, "seed", int, 0, MAX_SEED, "Seed"),
        "n": IMAGES_PER_CREATE if n is None else n,
        "num_inference_steps": _number(form, "steps", int, 1, MAX_STEPS, "Steps"),
        "guidance_scale": _number(form, "guidance", float, 0, 30, "Guidance"),
        "sampler": sampler or None,
    }


@router.post("/create")
def create(
    request: Request,
    user: CurrentUser,
    prompt: Annotated[str, Form(max_length=MAX_PROMPT_CHARS)],
    model: Annotated[str, Form(max_length=200)] = "",
    size: Annotated[str, Form(max_length=20)] = "",
    style: Annotated[str, Form(max_length=60)] = "",
    negative_prompt: Annotated[str, Form(max_length=MAX_PROMPT_CHARS)] = "",
    seed: Annotated[str, Form(max_length=20)] = "",
    n: Annotated[str, Form(max_length=4)] = "",
    steps: Annotated[str, Form(max_length=8)] = "",
    guidance: Annotated[str, Form(max_length=8)] = "",
    sampler: Annotated[str, Form(max_length=40)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    form = {
        "prompt": prompt,
        "model": model,
        "size": size,
        "style": style,
        "negative_prompt": negative_prompt,
        "seed": seed,
        "n": n,
        "steps": steps,
        "guidance": guidance,
        "sampler": sampler,
    }
    if style and style not in STYLES:
        return _form_page(request, user, 400, values=form, error="Unknown style.")
    try:
        advanced = _advanced(form)
    except InvalidRequest as e:
        return _form_page(request, user, 400, values=form, error=e.message)
    full = f"{prompt.strip()}, {style}" if style else prompt.strip()
    req = GenerationRequest(full, model=model or None, size=size or None, **advanced)
    return _start(request, user, "create", req, form)


def _source_image(request: Request, c: Creation) -> Image.Image:
    with request.app.state.db.session() as s:
        f = s.get(StoredFile, c.file_id)
    return Image.open(f.path).convert("RGB")


@router.post("/images/{creation_id}/variations")
def image_variations(
    request: Request, creation_id: str, user: CurrentUser, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, csrf_token)
    c = owned_creation(request, user.id, creation_id)
    if c is None:
        return render_page(request, "notfound.html", 404)
    req = GenerationRequest(c.prompt, n=IMAGES_PER_CREATE, model=c.model, image=_source_image(request, c), strength=0.6)
    return _start(request, user, "variations", req, {"source": c.id}, source=c.id)


async def _painted_mask(request: Request, upload: object) -> Image.Image:
    """The mask painted on the page (white = repaint) as an L image; an InvalidRequest saying
    what is wrong when there is none, it cannot be read, or nothing is painted."""
    if not isinstance(upload, UploadFile):
        raise InvalidRequest("Paint the area to change first.", param="mask")
    data = await upload.read()
    try:
        mask = read_image(data, param="mask", max_pixels=MAX_MASK_PIXELS).convert("L")
    except LimnerError as e:
        if e.code == "image_too_large":
            raise InvalidRequest("The painted mask is larger than any image here; reload the page.") from None
        raise InvalidRequest("The painted mask could not be read; reload the page and paint again.") from None
    if mask.getbbox() is None:
        raise InvalidRequest("Paint the area to change first.", param="mask")
    return mask


@router.post("/images/{creation_id}/edit")
async def image_edit(request: Request, creation_id: str, user: CurrentUser) -> Response:
    async with request.form(max_files=1, max_fields=5) as form:  # closes the upload's temporary file
        token = form.get("csrf_token")
        check_csrf(request, token if isinstance(token, str) else None)
        prompt = str(form.get("prompt") or "").strip()
        upload = form.get("mask")
        c = await run_in_threadpool(owned_creation, request, user.id, creation_id)
        if c is None:
            return await run_in_threadpool(render_page, request, "notfound.html", 404)
        try:
            if len(prompt) > MAX_PROMPT_CHARS:  # refused, never cut short
                raise InvalidRequest(f"The prompt is longer than {MAX_PROMPT_CHARS} characters: shorten it.")
            mask = await _painted_mask(request, upload)
        except InvalidRequest as e:
            params = json.dumps(c.params, indent=1, sort_keys=True)
            return await run_in_threadpool(
                render_page, request, "image.html", 400, c=c, params_json=params, error=e.message
            )
    return await run_in_threadpool(_edit, request, user, c, prompt, mask)


def _edit(request: Request, user, c: Creation, prompt: str, mask: Image.Image) -> Response:
    source = _source_image(request, c)
    req = GenerationRequest(
        prompt or c.prompt,
        n=IMAGES_PER_CREATE,
        model=c.model,
        image=source,
        mask=mask.resize(source.size, Image.Resampling.NEAREST),
    )
    return _start(request, user, "edit", req, {"source": c.id}, source=c.id)
