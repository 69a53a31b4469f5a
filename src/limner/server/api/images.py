"""``/v1/images/generations``, ``/v1/images/edits``, ``/v1/images/variations`` — OpenAI-shaped.

Each request is admitted (moderation, quota) before anything costly — decoding uploads included
— and then runs on a generation thread (``server.work``): a bounded number of them, cancelled
when the caller hangs up."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import io
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from PIL import Image, ImageOps, PngImagePlugin

from limner.engine import GenerationRequest, Progress
from limner.engine.metadata import read_metadata
from limner.engine.request import parse_size
from limner.errors import InvalidRequest, LimnerError
from limner.server import generation, multipart, sse, work
from limner.server.deps import Key
from limner.server.errors import ERROR_RESPONSES
from limner.server.schemas import QUALITY_STEPS, GenerationBody, ImageData, ImagesResponse, usage
from limner.server.uploads import edit_mask

log = logging.getLogger("limner.server")
router = APIRouter(prefix="/v1/images", tags=["images"], responses=ERROR_RESPONSES)
Prepare = Callable[[], GenerationRequest]  # builds the engine request once the request is admitted


def _engine_request(body: GenerationBody, cancel: threading.Event, **extra: object) -> GenerationRequest:
    if body.background == "transparent" and body.output_format == "jpeg":
        raise InvalidRequest(
            "a transparent background needs output_format png or webp (JPEG has no alpha channel)",
            param="output_format",
        )
    return GenerationRequest(
        prompt=body.prompt,
        negative_prompt=body.negative_prompt,
        n=body.n,
        size=None if body.size in (None, "auto") else body.size,
        seed=body.seed,
        num_inference_steps=body.num_inference_steps,
        steps_scale=QUALITY_STEPS[body.quality],
        guidance_scale=body.guidance_scale,
        model=body.model,
        sampler=body.sampler,
        loras=body.loras,
        background="transparent" if body.background == "transparent" else "opaque",
        typography=body.typography,
        cancel=cancel,
        **extra,  # type: ignore[arg-type]
    )


def public_base(request: Request) -> str:
    """Where returned links point: the configured public URL, else this server's own address —
    never the request's ``Host`` header, which the caller writes."""
    configured = request.app.state.settings.public_url
    if configured:
        return configured.rstrip("/")
    host, port = request.scope.get("server") or ("127.0.0.1", 80)
    host = f"[{host}]" if ":" in host else host
    scheme = request.url.scheme
    return f"{scheme}://{host}" + ("" if port == {"http": 80, "https": 443}.get(scheme) else f":{port}")


MAX_RESIZED_PIXELS = 2048 * 2048


def size_plan(request: Request, key, body: GenerationBody) -> tuple[str | None, tuple[int, int] | None]:
    """(the size to ask the model for, the size to deliver). Under the "resize" size policy (the
    server's, or the key's own) a size the model cannot make — an app's 1024x1024 for a 256 px
    model — is made at the model's size and resized, and the response says so."""
    if body.size in (None, "auto"):
        return None, None
    policy = getattr(key, "size_policy", None) or request.app.state.settings.size_policy
    if policy != "resize":
        return body.size, None
    w, h = parse_size(body.size)
    info = request.app.state.engine.backend(body.model).info()
    if f"{w}x{h}" in info.sizes:
        return body.size, None
    if w * h > MAX_RESIZED_PIXELS:
        raise InvalidRequest(f"size {body.size} is larger than resized images may be (2048x2048)", param="size")
    return info.sizes[0], (w, h)


def _deliver(images: list, size: tuple[int, int] | None) -> list:
    """The images at the size asked for: scaled to cover it, then centre-cropped (an aspect other
    than the model's loses its edges, never stretches)."""
    if size is None:
        return images
    w, h = size
    out = []
    for im in images:
        img = ImageOps.fit(im.image, (w, h), Image.Resampling.LANCZOS)
        params = {**im.parameters, "resized_to": f"{w}x{h}"}
        out.append(dataclasses.replace(im, image=img, parameters=params))
    return out


def _admit_and_run(request: Request, key, body: GenerationBody, endpoint: str, prepare: Prepare) -> generation.Result:
    """Admission, then the engine request (uploads are decoded only now), then generation."""
    app = request.app
    texts = () if endpoint == "variations" else (body.prompt,)  # variations: the prompt in the upload, in run
    with generation.admission(
        app.state.db, app.state.policy, key=key, texts=texts, n=body.n, moderation=body.moderation
    ) as ticket:
        req = prepare()
        native, delivered = size_plan(request, key, body)
        req.size = native
        result = generation.run(
            app.state.db,
            app.state.engine,
            app.state.policy,
            req,
            endpoint=endpoint,
            request_id=request.state.request_id,
            key=key,
            moderation=body.moderation,
            ticket=ticket,
            provenance=app.state.provenance,
        )
        if delivered is not None:
            result.resized_from = f"{result.images[0].image.width}x{result.images[0].image.height}"
            result.images = _deliver(result.images, delivered)
        return result


def _respond(request: Request, key, body: GenerationBody, result: generation.Result) -> ImagesResponse:
    app = request.app
    data = []
    for im in result.images:
        blob = generation.encode(im, body.output_format, body.output_compression)
        if body.response_format == "url":
            with app.state.db.session() as s:
                row = app.state.files.save(s, blob, body.output_format, key_id=key.id, meta=im.parameters)
            url = public_base(request) + app.state.files.signed_path(row.id, app.state.settings.url_expiry_minutes)
            data.append(ImageData(url=url, revised_prompt=im.revised_prompt or im.prompt))
        else:
            data.append(
                ImageData(b64_json=base64.b64encode(blob).decode(), revised_prompt=im.revised_prompt or im.prompt)
            )
    size = f"{result.images[0].image.width}x{result.images[0].image.height}"
    return ImagesResponse(
        created=int(time.time()),
        data=data,
        usage=usage(body.prompt, result.images, result.seconds),
        output_format=body.output_format,
        quality=body.quality,
        size=size,
        background="transparent" if body.background == "transparent" else "opaque",
        resized_from=result.resized_from,
    )


async def _serve(request: Request, key, body: GenerationBody, endpoint: str, prepare: Prepare, cancel: threading.Event):
    if body.stream:
        return await _stream(request, key, body, endpoint, prepare, cancel)
    return await work.run(
        request, lambda: _respond(request, key, body, _admit_and_run(request, key, body, endpoint, prepare)), cancel
    )


async def _stream(
    request: Request, key, body: GenerationBody, endpoint: str, prepare: Prepare, cancel: threading.Event
) -> StreamingResponse:
    """Server-sent events: ``image_generation.partial_image`` at evenly spaced steps, then one
    ``image_generation.completed`` per image (``image_edit.*`` for edits). The stream waits on an
    asyncio queue, so an open stream holds no thread."""
    prefix = "image_edit" if endpoint != "generations" else "image_generation"
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[tuple] = asyncio.Queue()
    wanted = body.partial_images

    def put(*item: object) -> None:
        loop.call_soon_threadsafe(events.put_nowait, item)

    def prepare_with_progress() -> GenerationRequest:
        req = prepare()
        sent: set[int] = set()

        def on_progress(p: Progress) -> None:
            marks = {round(k * p.total / (wanted + 1)) for k in range(1, wanted + 1)}
            if p.step in marks and p.step not in sent and p.previews:
                sent.add(p.step)
                put("partial", len(sent) - 1, p.previews)

        req.on_progress = on_progress
        req.previews = wanted > 0
        return req

    def generate() -> None:
        try:
            put("done", _admit_and_run(request, key, body, endpoint, prepare_with_progress))
        except LimnerError as e:
            put("error", e)
        except Exception:
            log.exception("unexpected error in a stream (%s)", request.state.request_id)
            put("error", LimnerError("The server had an error while processing your request."))

    work.admit(request)
    task = asyncio.create_task(work.run(request, generate, cancel, watch=False))
    request.app.state.tasks.add(task)
    task.add_done_callback(request.app.state.tasks.discard)
    # Wait for the first event before answering: an error found before any image (quota,
    # moderation, a failed generation) then still gets its own status code, not a 200 stream.
    first = await events.get()
    if first[0] == "error":
        raise first[1]

    async def gen() -> AsyncIterator[str]:
        pending: tuple | None = first
        try:
            while True:
                kind, *rest = pending or await events.get()
                pending = None
                if kind == "partial":
                    index, previews = rest
                    for img in previews:
                        big = img.resize((img.width * 4, img.height * 4), Image.Resampling.BICUBIC)
                        yield sse.event(
                            f"{prefix}.partial_image",
                            b64_json=sse.png_b64(big),
                            partial_image_index=index,
                            created_at=int(time.time()),
                            background="opaque",
                            output_format="png",
                            quality=body.quality,
                            size=body.size or "auto",
                        )
                elif kind == "done":
                    result = rest[0]
                    used = usage(body.prompt, result.images, result.seconds).model_dump()
                    for im in result.images:
                        blob = generation.encode(im, body.output_format, body.output_compression)
                        yield sse.event(
                            f"{prefix}.completed",
                            b64_json=base64.b64encode(blob).decode(),
                            created_at=int(time.time()),
                            background="opaque",
                            output_format=body.output_format,
                            quality=body.quality,
                            size=f"{im.image.width}x{im.image.height}",
                            usage=used,
                        )
                    return
                else:
                    e = rest[0]
                    yield sse.event(
                        "error", error={"message": e.message, "type": e.type, "param": e.param, "code": e.code}
                    )
                    return
        finally:
            cancel.set()  # the caller went away (or the stream ended): stop any work still running

    return StreamingResponse(gen(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.post(
    "/generations",
    response_model=ImagesResponse,
    response_model_exclude_none=True,
    summary="Create images from a prompt",
    responses={200: sse.stream_doc("image_generation")},
)
async def create_generation(body: GenerationBody, request: Request, key: Key):
    cancel = threading.Event()
    return await _serve(request, key, body, "generations", lambda: _engine_request(body, cancel), cancel)


@router.post(
    "/edits",
    response_model=ImagesResponse,
    response_model_exclude_none=True,
    summary="Edit an image: repaint where the mask is transparent, or all of it",
    responses={200: sse.stream_doc("image_edit")},
    openapi_extra=multipart.openapi(with_prompt=True, with_mask=True),
)
async def create_edit(request: Request, key: Key):
    form = await multipart.read_form(request)
    body, strength = multipart.body_from_form(form.fields, need_prompt=True)
    upload = form.one_image()
    cancel = threading.Event()

    def prepare() -> GenerationRequest:
        image = upload.decode(request)
        mask = None if form.mask is None else edit_mask(image, form.mask.decode(request))
        return _engine_request(body, cancel, image=image.convert("RGB"), mask=mask, strength=strength)

    return await _serve(request, key, body, "edits", prepare, cancel)


@router.post(
    "/variations",
    response_model=ImagesResponse,
    response_model_exclude_none=True,
    summary="Variations of an image (its embedded Limner prompt, when it has one, guides them)",
    openapi_extra=multipart.openapi(with_prompt=False, with_mask=False),
)
async def create_variation(request: Request, key: Key):
    form = await multipart.read_form(request)
    for field in multipart.PROMPT_FIELDS:
        if field in form.fields:
            raise InvalidRequest(f"Unknown parameter: '{field}'.", code="unknown_parameter", param=field)
    body, strength = multipart.body_from_form(form.fields, need_prompt=False)
    upload = form.one_image()
    cancel = threading.Event()

    def prepare() -> GenerationRequest:
        image = upload.decode(request)
        meta = {}
        if image.format == "PNG":
            buf = io.BytesIO()
            image.save(buf, format="PNG", pnginfo=_pnginfo(image))
            meta = read_metadata(buf.getvalue())
        body.prompt = meta.get("prompt") or "an image"
        return _engine_request(body, cancel, image=image.convert("RGB"), strength=0.6 if strength is None else strength)

    return await _serve(request, key, body, "variations", prepare, cancel)


def _pnginfo(image: Image.Image) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    for k, v in getattr(image, "text", {}).items():
        info.add_text(k, v)
    return info
